"""Messages to customers: one service to send a named message about a booking event, delivered by a job, once.

    customer_message_send(booking_id=b.pk, kind="overstay", event=f"overstay:{visit.pk}", extra={...},
                          channels=("email", "sms"))

records one CustomerMessage per channel (unique per booking, channel and event: asking again changes nothing) in
the caller's transaction and enqueues its delivery after commit. The row is the outbox: delivery locks it and
sends only a pending one, so a job run twice sends once; a failed send is retried by the sweep with back-off,
then given up (`failed`). Which events send what: apps.customers.receivers (booking signals) and the sweep below
(reminders, welcome back after exit, overstay charges), so the hot path of the barriers is never touched.
"""

import logging
from datetime import datetime, timedelta
from email.utils import formataddr, make_msgid, parseaddr
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.access.models import Visit
from apps.accounting.models import OverstayCharge, Payment
from apps.accounting.selectors import booking_balance
from apps.bookings import services as booking_services
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.core.jobs import enqueue, run_job
from apps.customers import rendering, sms
from apps.customers.models import BouncingAddress, CustomerMessage
from apps.payments.overstay import pay_url_for_visit

log = logging.getLogger(__name__)
Channel, Status = CustomerMessage.Channel, CustomerMessage.Status
WINDOW = timedelta(hours=6)  # how far back the sweep looks for exits and overstay charges to tell customers about
LONGEST_STAY = timedelta(days=90)  # a stay longer than this gets no welcome back message


def customer_message_send(
    *,
    booking_id: int,
    kind: str,
    event: str = "",
    extra: dict | None = None,
    channels=(Channel.EMAIL,),
    new_booking: bool = False,
) -> list[CustomerMessage]:
    """Send message `kind` (rendering.KINDS) about booking `booking_id` for `event` (default: the kind itself) on
    each channel, once: a second call for the same event returns the first's rows and sends nothing.
    `new_booking`: the booking was made in the caller's transaction, so it has no messages yet to look for (and an
    error rolls back to the caller's savepoint)."""
    if kind not in rendering.KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    rows = []
    with transaction.atomic(savepoint=not new_booking):
        for channel in channels:
            key = {"booking_id": booking_id, "channel": channel, "event": event or kind}
            fields = {"kind": kind, "extra": extra or {}, "next_attempt_at": timezone.now()}
            if new_booking:
                row, created = CustomerMessage.objects.create(**key, **fields), True
            else:
                row, created = CustomerMessage.objects.get_or_create(**key, defaults=fields)
            if created:
                enqueue("customers.deliver", message_id=row.pk)
            rows.append(row)
    return rows


def customer_message_deliver(*, message_id: int) -> str | None:
    """Render and send one pending message; its new status (None: not pending, nothing done). A failure is
    recorded for the retry and then raised, so that the job fails loudly."""
    failure = None
    with transaction.atomic():
        row = CustomerMessage.objects.select_for_update(of=("self",)).filter(pk=message_id, status=Status.PENDING)
        row = row.first()
        if row is None:
            return None
        booking = (
            Booking.objects.select_related("carpark", "brand", "customer", "agent").prefetch_related("vehicles")
        ).get(pk=row.booking_id)
        to = booking.customer.email if row.channel == Channel.EMAIL else booking.customer.phone
        row.attempts += 1
        if not to or not may_write_to(booking):
            row.status = Status.SKIPPED
        elif row.channel == Channel.EMAIL and BouncingAddress.objects.filter(email=to.lower()).exists():
            row.status, row.recipient = Status.SUPPRESSED, to
        else:
            try:
                rendered = rendering.render(row.kind, booking, row.extra)
                row.subject = rendered.subject[:300]
                if row.channel == Channel.EMAIL:
                    row.provider_id = _send_email(booking, rendered, to)
                else:
                    row.provider_id = sms.backend().send(to=to, text=rendered.sms)
            except Exception as exc:  # recorded, then raised below: the sweep retries, the job shows the failure
                failure = exc
                row.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
                if row.attempts >= settings.CUSTOMER_MESSAGE_ATTEMPTS:
                    row.status = Status.FAILED
                else:
                    row.next_attempt_at = timezone.now() + timedelta(minutes=2 ** (row.attempts - 1))
            else:
                row.status, row.sent_at, row.recipient = Status.SENT, timezone.now(), to
                if row.kind == "confirmed" and row.channel == Channel.EMAIL:
                    booking_services.booking_mark_confirmation_sent(booking_id=booking.pk)
        row.save()
    if failure is not None:
        raise failure
    return row.status


def _send_email(booking: Booking, rendered: rendering.Rendered, to: str) -> str:
    brand = rendered.sender
    default_name, default_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    address = (brand.email_from if brand else "") or default_address
    sender = formataddr((brand.name if brand else booking.carpark.name or default_name, address))
    message_id = make_msgid(domain=address.rpartition("@")[2] or None)
    email = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=sender,
        to=[to],
        reply_to=[brand.support_email] if brand and brand.support_email else None,
        headers={"Message-ID": message_id},
    )
    email.attach_alternative(rendered.html, "text/html")
    for filename, content, mimetype in rendered.attachments:
        email.attach(filename, content, mimetype)
    email.send()
    # A provider's API (anymail) names the message with its own id, which its tracking events carry.
    status = getattr(email, "anymail_status", None)
    return (status.message_id if status is not None and isinstance(status.message_id, str) else None) or message_id


def may_write_to(booking: Booking) -> bool:
    """A brand's customer, or an agent's whose contract lets the operator write to them (Agent.message_customers)."""
    if booking.brand_id is not None:
        return True
    customer = booking.customer
    return booking.agent_id is not None and booking.agent.message_customers and bool(customer.email or customer.phone)


def customer_message_tracked(*, provider_id: str, recipient: str, event: str, detail: str = "", hard: bool = True):
    """What the mail provider reported about a sent message (its tracking webhook): `bounced`, `rejected` or
    `complained` are recorded on the message, found by the provider's id or else (mail sent by its SMTP relay, whose
    ids are its own) the latest sent to `recipient`; a hard bounce, a rejection or a complaint also marks the address
    as bouncing, so later messages to it are suppressed. Returns the message, or None when none matches."""
    recipient = recipient.strip().lower()
    with transaction.atomic():
        sent = CustomerMessage.objects.select_for_update().filter(channel=Channel.EMAIL, sent_at__isnull=False)
        row = sent.filter(provider_id=provider_id).first() if provider_id else None
        if row is None and recipient:
            row = sent.filter(recipient__iexact=recipient).order_by("-sent_at").first()
        if row is not None:
            row.status = Status.COMPLAINED if event == "complained" else Status.BOUNCED
            row.bounced_at, row.last_error = timezone.now(), f"{event}: {detail}"[:2000]
            row.save(update_fields=["status", "bounced_at", "last_error"])
        if hard and recipient:
            BouncingAddress.objects.update_or_create(
                email=recipient, defaults={"event": event, "detail": detail[:2000], "message": row}
            )
    return row


def customer_address_bouncing(*, email: str) -> BouncingAddress | None:
    return BouncingAddress.objects.filter(email=email.strip().lower()).first()


# --- the sweep: events found by time, and retries -------------------------------------------------------------


def customer_messages_sweep(*, now: datetime | None = None) -> dict:
    """Send what is due (reminders the day before arrival, welcome back after an exit, overstay charges) and try
    failed sends again. Returns counts."""
    now = now or timezone.now()
    branded = Booking.objects.filter(Q(brand__isnull=False) | Q(agent__message_customers=True))  # may_write_to
    due = []  # (booking id, kind, event, extra or a function making it, channels)
    reminders = branded.filter(status=Booking.Status.CONFIRMED, arrival__gt=now, arrival__lte=now + timedelta(days=1))
    for booking_id, arrival, created_at in reminders.values_list("pk", "arrival", "created_at"):
        if created_at <= arrival - timedelta(days=1):  # not for a booking made on the day
            due.append((booking_id, "reminder", "reminder", dict, (Channel.EMAIL, Channel.SMS)))
    # Exits: visits of bookings that arrived lately (found by the bookings' (car park, arrival) index: the visits'
    # table, written at every barrier, has no index on exited_at).
    recent = branded.filter(
        carpark__in=CarPark.objects.all(), arrival__gt=now - LONGEST_STAY, arrival__lte=now, status="departed"
    )
    exits = Visit.objects.filter(booking__in=recent, exited_at__gt=now - WINDOW).values_list(
        "pk", "booking_id", "exited_at"
    )
    for visit_id, booking_id, exited_at in exits:
        receipt = partial(_receipt, booking_id, exited_at)
        due.append((booking_id, "welcome_back", f"welcome_back:{visit_id}", receipt, (Channel.EMAIL,)))
    for charge in OverstayCharge.objects.filter(exited_at__gt=now - WINDOW, booking__in=branded).select_related(
        "booking__brand", "booking__carpark"
    ):
        minutes = Visit.objects.filter(pk=charge.visit_id).values_list("overstay_minutes", flat=True).first()
        link = pay_url_for_visit(charge.visit_id) if charge.visit_id else None
        extra = {"minutes": minutes or 0, "amount": str(charge.amount), "pay_link": link or pay_link(charge.booking)}
        due.append(
            (charge.booking_id, "overstay", f"overstay:{charge.pk}", lambda e=extra: e, (Channel.EMAIL, Channel.SMS))
        )
    sent = CustomerMessage.objects.filter(booking_id__in={d[0] for d in due}).values_list("booking_id", "event")
    known = set(sent)
    queued = 0
    for booking_id, kind, event, extra, channels in due:
        if (booking_id, event) not in known:
            queued += 1
            customer_message_send(booking_id=booking_id, kind=kind, event=event, extra=extra(), channels=channels)
    retried = 0
    due = CustomerMessage.objects.filter(status=Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=30))
    for message_id in due.values_list("pk", flat=True)[:500]:
        retried += 1
        try:
            run_job("customers.deliver", {"message_id": message_id})
        except Exception:
            log.exception("customer message %s not sent (will retry)", message_id)
    return {"queued": queued, "retried": retried}


def pay_link(booking: Booking) -> str:
    """Where the customer pays what is owed when no overstay pay link names it (apps.payments): their booking's page."""
    return rendering.site_links(booking, rendering.sender_brand(booking))["manage"]


def _receipt(booking_id: int, exited_at: datetime) -> dict:
    """What the welcome back message's receipt says: paid (net of refunds) and still owed."""
    paid = Payment.objects.filter(booking_id=booking_id, kind=Payment.Kind.PAYMENT).aggregate(s=Sum("amount"))["s"]
    refunded = Payment.objects.filter(booking_id=booking_id, kind=Payment.Kind.REFUND).aggregate(s=Sum("amount"))["s"]
    owed = booking_balance(booking_id)
    return {"paid": str((paid or 0) - (refunded or 0)), "owed": str(owed), "exited_at": exited_at.isoformat()}
