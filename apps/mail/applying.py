"""What a booking action from email does (docs/email-ingress.md 2), on top of the booking services.

Per agent reference an AgentBookingState row remembers the Date of the last message applied and whether the
booking was cancelled by email. It is locked (select_for_update) while an action applies, so two messages for one
booking never interleave, and it is what makes ordering and remembered cancels work:

- a message older than the last one applied changes nothing (`superseded`);
- a cancel is final: a later new/amend for a cancelled reference is `superseded`;
- new for an existing reference amends it; amend for an unknown reference creates it;
- a full car park does not refuse an email booking: it is recorded and flagged overbooked;
- nor does a price or commission beyond the agent's terms: it is recorded with the tariff's price / contracted
  commission and flagged for review (apps.bookings.terms). Times outside the bookable window fail the action.

Called inside the transaction of services.inbound_email_process, each action in its own savepoint.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, transaction

from apps.agents.models import Agent
from apps.bookings.errors import BookingClosed, DuplicateAgentRef, NoCapacity
from apps.bookings.models import Booking
from apps.bookings.services import (
    booking_amend,
    booking_cancel,
    booking_create,
    local_to_utc,
)
from apps.carparks.models import CarPark
from apps.core.actor import acting
from apps.mail.models import AgentBookingState, InboundEmail
from apps.mail.parsers import BookingAction, Money

MAX_REF = AgentBookingState._meta.get_field("agent_ref").max_length
APPLIED = {"created", "amended", "cancelled", "cancel_remembered"}


class RowFailed(Exception):
    """This action cannot be applied; the message says why (for staff and the agent's error report)."""


@dataclass
class Applied:
    result: str  # created / amended / cancelled / cancel_remembered / superseded
    booking: Booking | None = None
    note: str = ""


def lock_states(agent: Agent, refs: list[str]) -> dict[str, AgentBookingState]:
    """Create missing state rows and lock all of them, in reference order (so two messages never deadlock)."""
    refs = sorted(set(refs))
    AgentBookingState.objects.bulk_create(
        [AgentBookingState(agent=agent, agent_ref=ref) for ref in refs], ignore_conflicts=True
    )
    locked = AgentBookingState.objects.select_for_update().filter(agent=agent, agent_ref__in=refs).order_by("agent_ref")
    return {state.agent_ref: state for state in locked}


def apply_actions(*, email: InboundEmail, sent_at: datetime, actions: list[BookingAction]) -> list[dict]:
    """Apply each action (file order) and return one result dict per action."""
    agent = email.agent
    for action in actions:
        if len(action.agent_ref) > MAX_REF and not action.error:
            action.error = f"agent reference longer than {MAX_REF} characters"
    states = lock_states(agent, [a.agent_ref for a in actions if a.agent_ref and not a.error])
    results = []
    for action in actions:
        results.append(_apply_one(email, agent, sent_at, action, states.get(action.agent_ref)))
    return results


def _apply_one(email, agent, sent_at, action: BookingAction, state: AgentBookingState | None) -> dict:
    entry = {"row": action.row, "action": action.action, "agent_ref": action.agent_ref, **action.source}
    if action.error or state is None:
        return entry | {"result": "failed", "error": action.error or "missing reference"}
    try:
        with transaction.atomic():
            with acting("agent", agent.code):
                outcome = _decide_and_apply(agent, sent_at, action, state)
            if outcome.result != "superseded":
                state.last_sent_at = max(sent_at, state.last_sent_at or sent_at)
                state.last_email = email
                state.cancelled = state.cancelled or action.action == "cancel"
                state.save()
    except RowFailed as exc:
        return entry | {"result": "failed", "error": str(exc)}
    except (ValueError, BookingClosed, DatabaseError) as exc:  # BookingInvalid / LocalTimeError are ValueErrors
        if isinstance(exc, DatabaseError) and not _is_data_error(exc):
            raise
        return entry | {"result": "failed", "error": str(exc) or exc.__class__.__name__}
    entry["result"] = outcome.result
    if outcome.booking is not None:
        entry["booking"] = outcome.booking.reference
        entry["overbooked"] = outcome.booking.overbooked
        if outcome.booking.needs_review:
            entry["needs_review"] = True
    if outcome.note:
        entry["note"] = outcome.note
    return entry


def _is_data_error(exc: DatabaseError) -> bool:
    """Integrity/data errors belong to this row; anything else (connection lost) must fail the whole job."""
    from django.db import DataError, IntegrityError

    return isinstance(exc, IntegrityError | DataError)


def _decide_and_apply(agent, sent_at, action: BookingAction, state: AgentBookingState) -> Applied:
    booking = Booking.objects.filter(agent=agent, agent_ref=action.agent_ref).first()
    if state.last_sent_at is not None and sent_at < state.last_sent_at:
        return Applied("superseded", booking, f"older than the message of {state.last_sent_at.isoformat()}")
    if action.action == "cancel":
        if booking is None:
            return Applied("cancel_remembered", None, "no such booking yet: a later new or amend will be superseded")
        return Applied("cancelled", booking_cancel(booking=booking))
    if state.cancelled or (booking is not None and booking.status == Booking.Status.CANCELLED):
        return Applied("superseded", booking, "the booking was cancelled")
    details = _details(agent, action)
    if booking is None:
        try:
            created = booking_create(
                **details,
                source=Booking.Source.EMAIL,
                agent=agent,
                agent_ref=action.agent_ref,
                allow_overbooking=True,
                correct_out_of_terms=True,
            )
        except DuplicateAgentRef:  # made meanwhile by the API: amend it instead
            booking = Booking.objects.get(agent=agent, agent_ref=action.agent_ref)
        else:
            return Applied("created", created)
    if "price" not in details or details["price"] is None:
        details.pop("price", None)
    if details.get("commission") is None:
        details.pop("commission", None)
    try:
        amended = booking_amend(booking=booking, allow_overbooking=True, correct_out_of_terms=True, **details)
        return Applied("amended", amended)
    except NoCapacity as exc:  # not raised with allow_overbooking; kept explicit for clarity
        raise RowFailed(str(exc)) from None


def _details(agent: Agent, action: BookingAction) -> dict:
    code = action.carpark_code.strip().upper()
    carpark = CarPark.objects.filter(code__iexact=code).first()
    if carpark is None:
        raise RowFailed(f"unknown car park {action.carpark_code!r}")
    if not agent.carparks.filter(pk=carpark.pk).exists():
        raise RowFailed(f"agent {agent.code} is not contracted for {carpark.code}")
    return {
        "carpark": carpark,
        "arrival": local_to_utc(carpark, action.arrival),
        "departure": local_to_utc(carpark, action.departure),
        "customer_name": action.customer_name,
        "customer_email": action.customer_email,
        "customer_phone": action.customer_phone,
        "vehicles": [
            {"registration": action.registration, "make": action.make, "model": action.model, "colour": action.colour}
        ],
        "price": _amount(action.price, carpark, "price"),
        "commission": _amount(action.commission, carpark, "commission"),
        "flight_outbound": action.flight_outbound,
        "flight_return": action.flight_return,
        "product": action.product or None,  # None: the agent's default (new) or the booking's own (amend)
    }


def _amount(money: Money | None, carpark: CarPark, label: str):
    if money is None:
        return None
    if money.currency and money.currency != carpark.currency:
        raise RowFailed(f"{label} is in {money.currency}, but {carpark.code} is priced in {carpark.currency}")
    return money.amount
