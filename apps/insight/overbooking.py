"""Learned overbooking: how many spaces each channel may sell beyond capacity on a day, at a chosen risk of a full
car park, and the allowances staff accepted (nothing oversells without a person accepting it).

The question per day: if the car park were sold to capacity (its sold stays showing up at the rate the forecast
expects at the day's peak hour) and a channel sold A more, each showing with that channel's learned chance (not
cancelled yet at that lead time, not a no-show), is the chance that more cars than spaces are there at the peak
at most the risk? Counts are taken as normal (sums of independent bookings), widened by the day-to-day variation
of the show rate that history shows beyond chance (pickup does not enter: the question is about a sold-out day).
The answer per channel assumes only that channel oversells; accepting checks the day's accepted allowances
together, so two accepted channels never exceed the risk between them.
"""

from datetime import date, datetime, timedelta
from statistics import NormalDist

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.carparks.models import CarPark
from apps.core.services import audit_log_record
from apps.insight import learning, model
from apps.insight.models import Forecast, OverbookingAllowance

MAX_RISK = 0.2


class AllowanceInvalid(ValueError):
    """An allowance that may not be accepted: its message says why."""


def parse_risk(text: str) -> float | None:
    """'200' (1 in 200 days) or '0.005' -> 0.005; anything unreadable -> None (the default risk)."""
    try:
        value = float(text)
    except ValueError:
        return None
    risk = 1 / value if value > 1 else value
    return risk if 0 < risk <= MAX_RISK else None


def _z(risk: float) -> float:
    return NormalDist().inv_cdf(1 - risk)


def _fits(*, capacity: int, base_mean: float, base_var: float, extra: list[tuple[int, float]], z: float) -> bool:
    mean = base_mean + sum(a * q for a, q in extra)
    var = base_var + sum(a * q * (1 - q) for a, q in extra)
    return mean + z * np.sqrt(var) <= capacity


def _largest(*, capacity: int, base_mean: float, base_var: float, q: float, z: float) -> int:
    spaces = 0
    while spaces < capacity and _fits(
        capacity=capacity, base_mean=base_mean, base_var=base_var, extra=[(spaces + 1, q)], z=z
    ):
        spaces += 1
    return spaces


def recommend(*, carpark: CarPark, forecast: Forecast, stays: learning.Stays, habits: dict) -> list[dict]:
    """One recommendation per future day and channel (none without history)."""
    if not forecast.has_history:
        return []
    from apps.insight.forecast import daily_peaks

    z = _z(forecast.risk)
    now = forecast.made_at.timestamp()
    live = (stays.created <= now) & ~(stays.cancelled <= now)
    pooled = habits[learning.POOLED]
    out = []
    for peak in daily_peaks(forecast, carpark):
        at = datetime.combine(peak["date"], datetime.strptime(peak["at"], "%H:%M").time(), tzinfo=carpark.tz)
        t = at.timestamp()
        holding = int((live & (stays.arrival <= t) & (stays.departure > t)).sum())
        lead_days = max(0.0, (t - now) / 86400)
        default_show = (1 - pooled.no_show) * (1 - float(pooled.cancel_share(np.array([lead_days]))[0]))
        # the show rate of what is sold: the on-the-books expectation (no pickup) over the stays holding a place
        on_books, _ = model.expected_on_site(stays, habits, as_of=now, hours=np.array([t]))
        show = min(1.0, float(on_books[0]) / holding) if holding else default_show
        base_mean = carpark.capacity * show
        base_var = carpark.capacity * show * (1 - show) + (carpark.capacity**2) * pooled.show_extra_var
        for channel, h in sorted(habits.items()):
            if channel == learning.POOLED:
                continue
            q = (1 - h.no_show) * (1 - float(h.cancel_share(np.array([lead_days]))[0]))
            spaces = _largest(capacity=carpark.capacity, base_mean=base_mean, base_var=base_var, q=q, z=z)
            out.append(
                {"date": peak["date"].isoformat(), "channel": channel, "spaces": spaces, "show": round(q, 4),
                 "base_mean": round(float(base_mean), 3), "base_var": round(float(base_var), 3)}
            )  # fmt: skip
    return out


def recommendations_with_state(forecast: Forecast) -> list[dict]:
    accepted = overbooking_allowances(
        carpark_id=forecast.carpark_id, start=timezone.localdate() - timedelta(days=1), end=date.max
    )
    z = _z(forecast.risk)
    shows = {(r["date"], r["channel"]): r["show"] for r in forecast.recommendations}
    out = []
    for r in forecast.recommendations:
        day = date.fromisoformat(r["date"])
        others = [
            (spaces, shows.get((r["date"], channel), r["show"]))
            for (d, channel), spaces in accepted.items()
            if d == day and channel != r["channel"]
        ]
        room = 0  # what may still be accepted for this channel beside the day's other accepted allowances
        while room < r["spaces"] and _fits(
            capacity=forecast.carpark.capacity, base_mean=r["base_mean"], base_var=r["base_var"],
            extra=[*others, (room + 1, r["show"])], z=z,
        ):  # fmt: skip
            room += 1
        out.append({**r, "accepted": accepted.get((day, r["channel"])), "room": room})
    return out


def overbooking_allowances(*, carpark_id: int, start: date, end: date) -> dict[tuple[date, str], int]:
    """Accepted allowances by (date, channel): what the allocation may sell beyond capacity (products issue)."""
    rows = OverbookingAllowance.objects.filter(carpark_id=carpark_id, date__gte=start, date__lte=end)
    return {(day, channel): spaces for day, channel, spaces in rows.values_list("date", "channel", "spaces")}


@transaction.atomic
def overbooking_allowance_accept(
    *, carpark_id: int, day: date, channel: str, spaces: int, forecast_id: int, actor
) -> OverbookingAllowance:
    """Accept (or change, or withdraw with 0) a channel's allowance for a day, within the forecast's
    recommendation and, with the day's other accepted allowances, within its risk. Audited."""
    forecast = Forecast.objects.select_related("carpark").filter(pk=forecast_id, carpark_id=carpark_id).first()
    if forecast is None:
        raise AllowanceInvalid("That forecast is not this car park's.")
    carpark = forecast.carpark
    if day < timezone.localtime(timezone.now(), carpark.tz).date():
        raise AllowanceInvalid(f"{day} is past: nothing to allow.")
    rec = next((r for r in forecast.recommendations if r["date"] == day.isoformat() and r["channel"] == channel), None)
    if rec is None:
        raise AllowanceInvalid(f"The forecast recommends nothing for {channel} on {day}.")
    if not 0 <= spaces <= rec["spaces"]:
        raise AllowanceInvalid(f"At most {rec['spaces']} spaces may be allowed to {channel} on {day} at this risk.")
    others = OverbookingAllowance.objects.select_for_update().filter(carpark=carpark, date=day).exclude(channel=channel)
    shows = {r["channel"]: r["show"] for r in forecast.recommendations if r["date"] == day.isoformat()}
    extra = [(a.spaces, shows.get(a.channel, rec["show"])) for a in others] + [(spaces, rec["show"])]
    if spaces and not _fits(
        capacity=carpark.capacity, base_mean=rec["base_mean"], base_var=rec["base_var"], extra=extra,
        z=_z(forecast.risk),
    ):  # fmt: skip
        raise AllowanceInvalid(
            f"With the allowances already accepted for {day}, {spaces} more for {channel} would exceed the risk."
        )
    allowance, _ = OverbookingAllowance.objects.update_or_create(
        carpark=carpark,
        date=day,
        channel=channel,
        defaults={
            "spaces": spaces,
            "risk": forecast.risk,
            "forecast": forecast,
            "accepted_by": actor,
            "accepted_at": timezone.now(),
        },
    )
    audit_log_record(
        action="overbooking_allowance_accept",
        actor=actor,
        obj=allowance,
        carpark=carpark,
        data={"date": day.isoformat(), "channel": channel, "spaces": spaces, "risk": forecast.risk,
              "recommended": rec["spaces"], "forecast": forecast.pk},
    )  # fmt: skip
    return allowance
