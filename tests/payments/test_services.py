"""Card payments through the services against localstripe: paid once, declined, 3-D Secure, expiry, late payment
re-booked or refunded, refunds retried, webhooks verified and applied once, the provider unreachable."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from apps.access.models import Alert
from apps.accounting import chart, selectors
from apps.accounting.models import LedgerLine
from apps.bookings import prepaid
from apps.bookings.errors import BookingInvalid, NoCapacity
from apps.bookings.models import Booking, CapacityDay
from apps.bookings.services import booking_cancel, booking_create
from apps.core.jobs import run_job
from apps.payments import services
from apps.payments.models import Payment, Refund, WebhookEvent
from apps.payments.providers import Intent, to_minor
from apps.products.models import Fare
from tests.bookings.conftest import local, make_world
from tests.payments.conftest import WEBHOOK_SECRET
from tests.support import free_port

pytestmark = pytest.mark.django_db(transaction=True)

STAY = {"arrival": local("2027-05-01T08:00"), "departure": local("2027-05-03T18:00")}


def web_booking(world, carpark=None, email="ann@example.com", **extra) -> Booking:
    extra.setdefault("pending_payment", True)
    return booking_create(
        carpark=carpark or world.carpark,
        customer_name="Ann Buyer",
        customer_email=email,
        vehicles=[{"registration": "AB12CDE"}],
        source=Booking.Source.WEB,
        brand=world.brand,
        **STAY,
        **extra,
    )


def card_total() -> Decimal:
    return sum((line.amount for line in LedgerLine.objects.filter(account__code=chart.CARD)), start=Decimal("0.00"))


def signed(payload: dict) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={signature}"


def receive(event: dict) -> WebhookEvent:
    """The event as Stripe would post it: signed once, its body and signature sent together."""
    body, signature = signed(event)
    return services.webhook_receive(provider="stripe", payload=body, signature=signature)


def test_a_paid_booking_is_confirmed_posted_and_emailed_once(stripe_settings, localstripe):
    world = make_world()
    booking = web_booking(world)
    assert booking.status == "pending_payment" and booking.payment_due_by is not None
    assert mail.outbox == []  # nothing until paid
    payment = services.payment_start(booking_id=booking.pk)
    assert services.payment_start(booking_id=booking.pk).pk == payment.pk  # the page again: the same intent
    intent = services.payment_card_confirm(payment_id=payment.pk, card_token=localstripe.card_token())
    assert intent.status == "succeeded"
    booking.refresh_from_db()
    assert booking.status == "confirmed" and booking.payment_due_by is None
    assert selectors.booking_balance(booking.pk) == 0 and card_total() == booking.price
    # the same success told again (browser, webhook, reconcile): applied once
    services.payment_sync(payment_id=payment.pk)
    services.payments_reconcile(older_than=timedelta(0))
    assert card_total() == booking.price and len(mail.outbox) == 1
    assert booking.reference in mail.outbox[0].subject


def test_a_declined_card_keeps_the_booking_waiting_and_another_card_pays(stripe_settings, localstripe):
    booking = web_booking(make_world())
    payment = services.payment_start(booking_id=booking.pk)
    with pytest.raises(services.CardDeclined, match="declined"):
        services.payment_card_confirm(payment_id=payment.pk, card_token=localstripe.card_token("4000000000000341"))
    assert Booking.objects.get(pk=booking.pk).status == "pending_payment" and card_total() == 0
    again = services.payment_start(booking_id=booking.pk)  # a declined intent is done with: a new one
    assert again.pk != payment.pk and Payment.objects.get(pk=payment.pk).status == "failed"
    services.payment_card_confirm(payment_id=again.pk, card_token=localstripe.card_token())
    assert Booking.objects.get(pk=booking.pk).status == "confirmed"


def test_3d_secure_is_finished_in_the_browser_then_read_back(stripe_settings, localstripe):
    booking = web_booking(make_world())
    payment = services.payment_start(booking_id=booking.pk)
    intent = services.payment_card_confirm(payment_id=payment.pk, card_token=localstripe.card_token("4000002500003155"))
    assert intent.status == "requires_action" and Booking.objects.get(pk=booking.pk).status == "pending_payment"
    localstripe.authenticate(intent.client_secret)
    services.payment_sync(payment_id=payment.pk)
    assert Booking.objects.get(pk=booking.pk).status == "confirmed"


def test_unpaid_bookings_expire_by_the_job_and_free_their_spaces(stripe_settings):
    world = make_world()
    booking = web_booking(world, carpark=world.tiny)
    assert CapacityDay.objects.filter(carpark=world.tiny, held=1).count() == 3
    run_job("bookings.expire_unpaid", {})  # not due yet
    assert Booking.objects.get(pk=booking.pk).status == "pending_payment"
    Booking.objects.filter(pk=booking.pk).update(payment_due_by=timezone.now() - timedelta(seconds=1))
    run_job("bookings.expire_unpaid", {})
    assert Booking.objects.get(pk=booking.pk).status == "expired"
    assert not CapacityDay.objects.filter(carpark=world.tiny, held__gt=0).exists()
    assert selectors.booking_balance(booking.pk) == 0  # the sale reversed


def test_paid_after_expiry_rebooks_when_space_remains_else_refunds_and_alerts(stripe_settings, localstripe):
    world = make_world()
    late, lost = web_booking(world, carpark=world.tiny), web_booking(world, carpark=world.tiny, email="b@example.com")
    payments = {b.pk: services.payment_start(booking_id=b.pk) for b in (late, lost)}
    later = timezone.now() + timedelta(hours=1)
    assert prepaid.booking_expire(booking_id=late.pk, now=later) and prepaid.booking_expire(
        booking_id=lost.pk, now=later
    )
    # space remains: paid late, re-booked
    services.payment_card_confirm(payment_id=payments[late.pk].pk, card_token=localstripe.card_token())
    assert Booking.objects.get(pk=late.pk).status == "confirmed"
    # the last space goes to someone else; then the other late payment: refunded in full, staff alerted
    web_booking(world, carpark=world.tiny, email="c@example.com", pending_payment=False)
    services.payment_card_confirm(payment_id=payments[lost.pk].pk, card_token=localstripe.card_token())
    assert Booking.objects.get(pk=lost.pk).status == "expired"
    refund = Refund.objects.get(payment__booking=lost)
    assert refund.status == "succeeded" and refund.amount == lost.price and refund.provider_refund_id.startswith("re_")
    assert selectors.booking_balance(lost.pk) == 0 and card_total() == late.price
    assert Alert.objects.filter(reason="payment_refunded", detail__contains=lost.reference).exists()


def test_an_amount_not_matching_is_not_confirmed_and_staff_are_alerted(stripe_settings):
    booking = web_booking(make_world())
    payment = Payment.objects.create(booking=booking, provider="stripe", intent_id="pi_x", amount=booking.price,
                                     currency="GBP")  # fmt: skip
    services.payment_intent_apply(payment_id=payment.pk, intent=Intent("pi_x", "succeeded", 100, "GBP"))
    assert Payment.objects.get(pk=payment.pk).status == "mismatch"
    assert Booking.objects.get(pk=booking.pk).status == "pending_payment" and card_total() == 0
    assert Alert.objects.filter(reason="payment_mismatch").exists()


def test_stripe_unreachable_means_try_again_and_nothing_confirmed(stripe_settings):
    booking = web_booking(make_world())
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(services.ProviderUnavailable):
        services.payment_start(booking_id=booking.pk)
    assert Booking.objects.get(pk=booking.pk).status == "pending_payment"
    assert not Payment.objects.exclude(intent_id="").exists()


def paid_booking(world, localstripe, **extra) -> Booking:
    booking = web_booking(world, **extra)
    payment = services.payment_start(booking_id=booking.pk)
    services.payment_card_confirm(payment_id=payment.pk, card_token=localstripe.card_token())
    return Booking.objects.get(pk=booking.pk)


def test_a_cancellation_refunds_what_the_fare_allows(stripe_settings, localstripe):
    world = make_world()
    early = paid_booking(world, localstripe)
    booking_cancel(booking=early)  # long before the cut-off: all of it back
    assert Refund.objects.get(payment__booking=early).amount == early.price
    Fare.objects.filter(product__carpark=world.carpark).update(cancellation_fee=Decimal("10.00"))
    late = paid_booking(world, localstripe, email="late@example.com")
    booking_cancel(booking=Booking.objects.get(pk=late.pk))  # the fare's fee is kept
    refund = Refund.objects.get(payment__booking=late)
    assert refund.status == "succeeded" and refund.amount == late.price - Decimal("10.00")
    assert selectors.booking_balance(late.pk) == selectors.booking_balance(early.pk) == 0
    assert card_total() == Decimal("10.00")  # the fee stays; both refunds went back to the card


def test_an_amendment_costing_less_is_refunded_and_one_costing_more_is_paid_first(stripe_settings, localstripe):
    from apps.bookings.services import booking_amend

    booking = paid_booking(make_world(), localstripe)
    shorter = booking_amend(booking=booking, departure=STAY["departure"] - timedelta(days=1))
    assert Refund.objects.get(payment__booking=booking).amount == booking.price - shorter.price
    longer = {"departure": (STAY["departure"] + timedelta(days=3)).isoformat()}
    top_up = services.payment_start_top_up(booking_id=booking.pk, changes=longer, amount=Decimal("36.00"))
    assert top_up.changes["price"] == str(shorter.price + 36)
    assert Booking.objects.get(pk=booking.pk).departure == shorter.departure  # nothing changes until paid
    services.payment_card_confirm(payment_id=top_up.pk, card_token=localstripe.card_token())
    amended = Booking.objects.get(pk=booking.pk)
    assert amended.departure == STAY["departure"] + timedelta(days=3) and amended.price == shorter.price + 36
    assert selectors.booking_balance(booking.pk) == 0
    assert card_total() == booking.price - (booking.price - shorter.price) + 36


def test_a_failed_refund_is_retried_then_shown_to_staff_and_sent_again(stripe_settings, localstripe):
    booking = paid_booking(make_world(), localstripe)
    good_base = stripe_settings.STRIPE_API_BASE
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    stripe_settings.STRIPE_MAX_NETWORK_RETRIES = 0
    booking_cancel(booking=booking)  # its refund's job runs (in this thread), and its retries too: all fail
    refund = Refund.objects.get(payment__booking=booking)
    assert refund.status == "failed" and refund.attempts == services.REFUND_ATTEMPTS
    assert Alert.objects.filter(reason="refund_failed").exists() and card_total() == booking.price
    with pytest.raises(services.RefundInvalid):
        services.refund_request(payment_id=refund.payment_id, amount=Decimal("1.00"), reason=" ")
    stripe_settings.STRIPE_API_BASE = good_base
    services.refund_retry(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == "succeeded" and card_total() == 0 and selectors.booking_balance(booking.pk) == 0


def test_webhooks_are_verified_stored_once_and_applied_in_any_order(stripe_settings, localstripe):
    booking = web_booking(make_world())
    payment = services.payment_start(booking_id=booking.pk)
    with pytest.raises(services.BadSignature):
        services.webhook_receive(provider="stripe", payload=b"{}", signature="")
    with pytest.raises(services.BadSignature):
        services.webhook_receive(provider="stripe", payload=b"{}", signature="t=1,v1=00")
    pi = {"id": payment.intent_id, "object": "payment_intent"}
    failed = {"id": "evt_1", "type": "payment_intent.payment_failed", "data": {"object": pi}}
    succeeded = {"id": "evt_2", "type": "payment_intent.succeeded", "data": {"object": pi}}
    unknown = {"id": "evt_3", "type": "payment_intent.succeeded", "data": {"object": {**pi, "id": "pi_nobody"}}}
    # the card is charged; its events arrive late, out of order, twice, with one about an intent we do not know
    localstripe.client().v1.payment_intents.update(
        payment.intent_id,
        params={"payment_method": localstripe.client().v1.tokens.retrieve(localstripe.card_token())["card"]["id"]},
    )
    localstripe.client().v1.payment_intents.confirm(payment.intent_id)
    for event in (succeeded, failed, succeeded, unknown):
        receive(event)
    assert WebhookEvent.objects.count() == 3 and not WebhookEvent.objects.filter(applied_at=None).exists()
    assert Booking.objects.get(pk=booking.pk).status == "confirmed" and card_total() == booking.price


def test_a_succeeded_event_is_applied_as_signed_and_any_other_state_is_read_back(stripe_settings):
    booking = web_booking(make_world())
    payment = services.payment_start(booking_id=booking.pk)
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # from here on the provider cannot be asked
    pi = {"id": payment.intent_id, "object": "payment_intent", "amount": to_minor(payment.amount), "currency": "gbp"}
    processing = {"id": "evt_p", "type": "payment_intent.processing", "data": {"object": pi | {"status": "processing"}}}
    succeeded = {"id": "evt_s", "type": "payment_intent.succeeded", "data": {"object": pi | {"status": "succeeded"}}}
    receive(processing)
    assert WebhookEvent.objects.get(event_id="evt_p").applied_at is None  # not final: read back, so it failed
    assert Payment.objects.get(pk=payment.pk).status == "pending"
    receive(succeeded)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Booking.objects.get(pk=booking.pk).status == "confirmed" and card_total() == booking.price


def test_agents_bookings_are_never_pending_payment(stripe_settings):
    world = make_world()
    agent = {"source": Booking.Source.API, "agent": world.agent, "agent_ref": "X1"}
    with pytest.raises(BookingInvalid):
        booking_create(
            carpark=world.carpark, customer_name="A", vehicles=[{"registration": "AB1"}], pending_payment=True,
            **agent, **STAY,
        )  # fmt: skip


def test_twenty_customers_paying_for_the_last_five_spaces(stripe_settings, localstripe):
    """Exactly five are confirmed and charged; the others were never charged (no space to hold); capacity, payments
    and the ledger agree."""
    world = make_world()
    world.tiny.capacity = 5
    world.tiny.save()
    tokens = [localstripe.card_token() for _ in range(20)]
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def customer(n: int) -> None:
        from django.db import connection

        try:
            barrier.wait()
            try:
                booking = web_booking(world, carpark=world.tiny, email=f"c{n}@example.com")
            except NoCapacity:
                outcomes.append("full")
                return
            payment = services.payment_start(booking_id=booking.pk)
            outcomes.append(services.payment_card_confirm(payment_id=payment.pk, card_token=tokens[n]).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=customer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["full"] * 15 + ["succeeded"] * 5
    confirmed = Booking.objects.filter(carpark=world.tiny, status="confirmed")
    assert confirmed.count() == 5 and set(
        CapacityDay.objects.filter(carpark=world.tiny).values_list("held", flat=True)
    ) == {5}
    assert Payment.objects.filter(status="succeeded").count() == 5
    assert card_total() == sum(b.price for b in confirmed)
    assert all(selectors.booking_balance(b.pk) == 0 for b in confirmed)
