"""Booking services: validation, pricing, capacity holds that reconcile, overbooking, signals in the transaction."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count

from apps.bookings import services, signals
from apps.bookings.errors import NotContracted
from apps.bookings.models import Booking, CapacityDay
from apps.bookings.pricing import stay_dates
from tests.bookings.conftest import LONDON, local

CAR = [{"registration": "ab12 cde", "make": "Ford"}]


def create(world, **overrides) -> Booking:
    fields = {
        "carpark": world.tiny,
        "arrival": local("2026-12-01T05:30"),
        "departure": local("2026-12-03T22:15"),
        "customer_name": "Jane Smith",
        "vehicles": CAR,
        "source": Booking.Source.API,
        "agent": world.agent,
        **overrides,
    }
    return services.booking_create(**fields)


def held(carpark) -> dict:
    return dict(CapacityDay.objects.filter(carpark=carpark).values_list("date", "held"))


def assert_reconciles(carpark) -> None:
    """Every day's `held` equals the number of bookings (not cancelled) whose stay touches it."""
    expected: dict = {}
    for b in Booking.objects.filter(carpark=carpark).exclude(status=Booking.Status.CANCELLED):
        for d in stay_dates(arrival=b.arrival, departure=b.departure, tz=LONDON):
            expected[d] = expected.get(d, 0) + 1
    assert {d: n for d, n in held(carpark).items() if n} == expected


def test_create_prices_from_the_tariff_and_holds_each_day(world):
    booking = create(world, carpark=world.carpark, agent_ref="A-1", flight_outbound="ba0117")
    assert booking.reference.startswith("PG-") and len(booking.reference) == 9
    assert booking.price == Decimal("45.00")  # 3 days at 15.00
    assert booking.commission == Decimal("6.75")  # the agent's 15%
    assert booking.currency == "GBP" and booking.flight_outbound == "BA0117" and not booking.overbooked
    assert list(booking.vehicles.values_list("registration", "registration_raw", "make")) == [
        ("AB12CDE", "ab12 cde", "Ford")
    ]
    assert sorted(held(world.carpark).values()) == [1, 1, 1]
    assert_reconciles(world.carpark)


def test_brand_override_and_given_price(world):
    web = create(world, carpark=world.carpark, agent=None, brand=world.brand, source=Booking.Source.WEB)
    assert web.price == Decimal("36.00")  # the brand's 12.00 a day
    given = create(world, carpark=world.carpark, price="54.99", commission="8.25", agent_ref="X")
    assert (given.price, given.commission) == (Decimal("54.99"), Decimal("8.25"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"departure": local("2026-12-01T05:30")}, "departure must be after arrival"),
        ({"departure": local("2027-06-01T05:30")}, "at most 92 days"),
        ({"customer_name": "  "}, "customer name is required"),
        ({"vehicles": []}, "at least one vehicle"),
        ({"vehicles": [{"registration": "--"}]}, "is not a vehicle registration"),
        ({"vehicles": [{"registration": "AB1"}, {"registration": "ab 1"}]}, "twice"),
        ({"customer_email": "not-an-email"}, "not an email address"),
        ({"price": "-1"}, "price must be"),
        ({"customer_name": "Nul\x00l"}, "customer name"),
    ],
)
def test_bad_input_is_booking_invalid(world, overrides, message):
    with pytest.raises(services.BookingInvalid, match=message):
        create(world, **overrides)
    assert not Booking.objects.exists() and not any(held(world.tiny).values())


def test_sellers_are_checked(world):
    with pytest.raises(NotContracted):
        create(world, carpark=world.carpark, agent=world.other_agent)
    with pytest.raises(services.BookingInvalid, match="does not sell"):
        create(world, carpark=world.carpark, agent=None, brand=world.other_brand, source=Booking.Source.WEB)


def test_duplicate_agent_ref(world):
    create(world, agent_ref="SPX-1")
    with pytest.raises(services.DuplicateAgentRef):
        create(world, agent_ref="SPX-1")
    create(world, agent=world.other_agent, agent_ref="SPX-1")  # scoped to the agent


def test_full_days_refuse_unless_overbooking_is_allowed(world):
    create(world)
    create(world, arrival=local("2026-12-03T08:00"), departure=local("2026-12-05T08:00"))  # 3 Dec now full
    with pytest.raises(services.NoCapacity) as full:
        create(world, arrival=local("2026-11-30T08:00"), departure=local("2026-12-04T08:00"))
    assert [d.isoformat() for d in full.value.dates] == ["2026-12-03"]
    assert "Tiny Park is full on Thu 03 Dec 2026" in str(full.value)
    assert_reconciles(world.tiny)
    over = create(world, arrival=local("2026-12-03T09:00"), departure=local("2026-12-03T10:00"), allow_overbooking=True)
    assert over.overbooked
    assert held(world.tiny)[local("2026-12-03T12:00").date()] == 3
    assert_reconciles(world.tiny)


def test_amend_moves_holds_and_reprices(world):
    booking = create(world, carpark=world.carpark, agent_ref="A-2")
    amended = services.booking_amend(
        booking=booking, departure=local("2026-12-06T10:00"), vehicles=[{"registration": "XY51ABC"}]
    )
    assert amended.price == Decimal("75.00")  # 6 days: 3 x 15 + 3 x 10
    assert amended.commission == Decimal("11.25")
    assert list(amended.vehicles.values_list("registration", flat=True)) == ["XY51ABC"]
    assert_reconciles(world.carpark)
    moved = services.booking_amend(booking=amended, carpark=world.tiny)
    assert moved.carpark == world.tiny and moved.price == Decimal("30.00")
    assert not any(held(world.carpark).values())
    assert_reconciles(world.tiny)


def test_amend_into_full_days_changes_nothing(world):
    create(world, arrival=local("2026-12-10T08:00"), departure=local("2026-12-10T18:00"))
    create(world, arrival=local("2026-12-10T08:00"), departure=local("2026-12-10T18:00"))
    booking = create(world)
    before = held(world.tiny)
    with pytest.raises(services.NoCapacity):
        services.booking_amend(booking=booking, departure=local("2026-12-10T12:00"))
    booking.refresh_from_db()
    assert booking.departure == local("2026-12-03T22:15") and held(world.tiny) == before


def test_cancel_frees_the_days_once(world):
    booking = create(world)
    cancelled = services.booking_cancel(booking=booking)
    assert cancelled.status == Booking.Status.CANCELLED and not any(held(world.tiny).values())
    again = services.booking_cancel(booking=booking)
    assert again.status == Booking.Status.CANCELLED and not any(held(world.tiny).values())
    with pytest.raises(services.BookingInvalid, match="cancelled"):
        services.booking_amend(booking=booking, departure=local("2026-12-04T10:00"))


def test_after_arrival_cancel_and_amend_are_refused(world):
    booking = create(world)
    Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.ARRIVED)
    with pytest.raises(services.BookingClosed):
        services.booking_cancel(booking=booking)
    with pytest.raises(services.BookingClosed):
        services.booking_amend(booking=booking, customer_name="X")


def test_signals_are_sent_inside_the_transaction(world):
    seen = []

    def receiver(sender, booking, **kwargs):
        seen.append((kwargs.get("signal"), booking.reference, transaction.get_connection().in_atomic_block, kwargs))

    for signal in (signals.booking_created, signals.booking_amended, signals.booking_cancelled):
        signal.connect(receiver, dispatch_uid="test")
    try:
        booking = create(world, agent_ref="S-1", price="20.00")
        services.booking_amend(booking=booking, price="30.00")
        services.booking_cancel(booking=booking)
        services.booking_cancel(booking=booking)  # no second signal
    finally:
        for signal in (signals.booking_created, signals.booking_amended, signals.booking_cancelled):
            signal.disconnect(dispatch_uid="test")
    assert [s for s, *_ in seen] == [signals.booking_created, signals.booking_amended, signals.booking_cancelled]
    assert all(in_atomic for _, _, in_atomic, _ in seen)
    assert seen[1][3]["previous_price"] == Decimal("20.00") and seen[1][3]["previous_commission"] == Decimal("3.00")
    assert seen[2][3]["previous_status"] == "confirmed"


def test_a_failing_receiver_rolls_the_booking_back(world):
    def refuse(sender, booking, **kwargs):
        raise RuntimeError("ledger down")

    signals.booking_created.connect(refuse, dispatch_uid="refuse")
    try:
        with pytest.raises(RuntimeError):
            create(world)
    finally:
        signals.booking_created.disconnect(dispatch_uid="refuse")
    assert not Booking.objects.exists() and not any(held(world.tiny).values())


def test_references_are_unique(world):
    refs = [
        create(world, arrival=local(f"2026-12-{d:02d}T08:00"), departure=local(f"2026-12-{d:02d}T09:00")).reference
        for d in range(1, 21)
    ]
    assert len(set(refs)) == 20
    assert Booking.objects.values("reference").annotate(n=Count("id")).filter(n__gt=1).count() == 0


def test_a_reference_collision_draws_again(world, monkeypatch):
    first = create(world)
    drawn = iter([first.reference, "PG-NEW234"])
    monkeypatch.setattr(services.create, "new_reference", lambda: next(drawn))  # where booking_create draws it
    second = create(world, arrival=local("2026-12-05T08:00"), departure=local("2026-12-05T09:00"))
    assert second.reference == "PG-NEW234"
    assert_reconciles(world.tiny)
