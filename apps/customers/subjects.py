"""Who a person is in our data: from an email address, a name or a plate, the bookings, identifiers and rows that
hold their personal data. Shared by the subject access export and the erasure, so both cover the same rows."""

import re
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.access.models import Alert, PlateRead, Visit
from apps.bookings.models import ApiIdempotencyKey, Booking, BookingChange, Customer, Vehicle
from apps.core import plates as plate_forms
from apps.core.models import AuditLog
from apps.customers import scrub
from apps.customers.models import BouncingAddress
from apps.mail.models import InboundEmail


@dataclass
class Subject:
    matched_by: str
    booking_ids: set[int] = field(default_factory=set)
    customer_ids: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    plates: set[str] = field(default_factory=set)  # normal form
    # Only rows linked to the bookings (retention erases one old booking, not the person's newer ones by plate)
    linked_only: bool = False

    @property
    def lookalike_keys(self) -> set[str]:
        return {plate_forms.lookalike_key(p) for p in self.plates}

    def pattern(self) -> re.Pattern | None:
        """Finds any of their identifiers in free text (names and emails as written, plates and phones spaced)."""
        return scrub.pattern(words=self.names | self.emails, compact=self.plates | self.lookalike_keys | self.phones)

    def regex_sql(self) -> str | None:
        found = self.pattern()
        return found.pattern if found else None

    # --- their rows ----------------------------------------------------------------------------------------------

    def bookings(self) -> QuerySet[Booking]:
        return Booking.objects.filter(pk__in=self.booking_ids)

    def customers(self) -> QuerySet[Customer]:
        return Customer.objects.filter(pk__in=self.customer_ids)

    def history(self) -> QuerySet[BookingChange]:
        return BookingChange.objects.filter(booking_id__in=self.booking_ids)

    def vehicles(self) -> QuerySet[Vehicle]:
        if self.linked_only:
            return Vehicle.objects.filter(booking_id__in=self.booking_ids)
        return Vehicle.objects.filter(Q(booking_id__in=self.booking_ids) | Q(registration__in=self.plates))

    def reads(self) -> QuerySet[PlateRead]:
        if self.linked_only:
            return PlateRead.objects.filter(booking_id__in=self.booking_ids)
        return PlateRead.objects.filter(
            Q(booking_id__in=self.booking_ids) | Q(plate__in=self.plates) | Q(lookalike_key__in=self.lookalike_keys)
        )

    def visits(self) -> QuerySet[Visit]:
        if self.linked_only:
            return Visit.objects.filter(booking_id__in=self.booking_ids)
        return Visit.objects.filter(
            Q(booking_id__in=self.booking_ids) | Q(plate__in=self.plates) | Q(lookalike_key__in=self.lookalike_keys)
        )

    def alerts(self) -> QuerySet[Alert]:
        if self.linked_only:
            return Alert.objects.filter(read__in=self.reads())
        plates = self.plates | self.lookalike_keys
        return Alert.objects.filter(Q(plate__in=plates) | Q(read__in=self.reads()) | self._mentions(Alert, "detail"))

    def emails_naming(self) -> QuerySet[InboundEmail]:
        """Agents' emails that made or changed their bookings, or whose text or raw bytes name them."""
        q = Q(pk__in=[])
        for ref, agent_id, agent_ref in self.bookings().values_list("reference", "agent_id", "agent_ref"):
            q |= Q(result__contains=[{"booking": ref}])
            if agent_id and agent_ref:
                q |= Q(agent_id=agent_id, result__contains=[{"agent_ref": agent_ref}])
        if self.linked_only:
            return InboundEmail.objects.filter(q)
        q |= (
            self._mentions(InboundEmail, "subject")
            | self._mentions(InboundEmail, "result")
            | self._mentions(InboundEmail, "error")
        )
        for needle in self.emails | self.names | {p for p in self.plates if len(p) >= 4}:
            # the bytes as received, in case no parsed field names them (a failed message, an attachment)
            q |= Q(pk__in=RawSQL("SELECT id FROM mail_inboundemail WHERE position(convert_to(%s, 'UTF8') in raw) > 0",
                                 [needle]))  # fmt: skip
        originals = InboundEmail.objects.filter(q)
        return InboundEmail.objects.filter(Q(pk__in=originals.values("pk")) | Q(duplicate_of__in=originals))

    def bouncing(self) -> QuerySet[BouncingAddress]:
        """Their addresses the mail provider reported as bouncing (kept through one booking's retention: the
        address may still be on their newer bookings)."""
        if self.linked_only:
            return BouncingAddress.objects.none()
        return BouncingAddress.objects.filter(email__in=self.emails)

    def audit_entries(self) -> QuerySet[AuditLog]:
        """Audit entries about their bookings, or whose data names them."""
        about = Q(object_type="bookings.Booking", object_id__in=[str(i) for i in self.booking_ids])
        if self.linked_only:
            return AuditLog.objects.filter(about)
        return AuditLog.objects.filter(about | self._mentions(AuditLog, "data"))

    def idempotency_responses(self) -> QuerySet[ApiIdempotencyKey]:
        if self.linked_only:  # kept 24 hours: long gone when a booking's retention ends
            return ApiIdempotencyKey.objects.none()
        return ApiIdempotencyKey.objects.filter(self._mentions(ApiIdempotencyKey, "response"))

    def _mentions(self, model, column: str) -> Q:
        """Rows whose column (text or JSON, as text) matches their identifiers: PostgreSQL's case-insensitive regex
        (the pattern is written in the syntax Python's re and PostgreSQL's share)."""
        regex = self.regex_sql()
        if regex is None:
            return Q(pk__in=[])
        sql = f"SELECT id FROM {model._meta.db_table} WHERE {column}::text ~* %s"  # noqa: S608  (our names)
        return Q(pk__in=RawSQL(sql, [regex]))  # noqa: S611


class Nobody(LookupError):
    """Nobody matches: no booking, read or visit under that email, name or plate."""


def find_subject(*, email: str = "", plate: str = "", name: str = "") -> Subject:
    """The person behind one email address, plate or name (exact, ignoring case), and everything joined to them:
    their bookings, then the plates and addresses on those, then other bookings under those addresses.
    Raises Nobody when nothing is held."""
    given = [k for k, v in (("email", email), ("plate", plate), ("name", name)) if v and v.strip()]
    if len(given) != 1:
        raise ValueError("give exactly one of email, plate and name")
    subject = Subject(matched_by=given[0])
    if email:
        start = Booking.objects.filter(customer__email__iexact=email.strip())
    elif name:
        start = Booking.objects.filter(customer__name__iexact=" ".join(name.split()))
    else:
        normal = plate_forms.normalise(plate)
        if not normal:
            raise Nobody(plate)
        subject.plates.add(normal)
        start = Booking.objects.filter(vehicles__registration=normal)
    subject.booking_ids = set(start.values_list("pk", flat=True))
    _grow(subject)
    if not subject.booking_ids and not subject.reads().exists() and not subject.visits().exists():
        raise Nobody(email or plate or name)
    return subject


def booking_subject(booking_id: int) -> Subject:
    """One booking's personal data and the rows linked to it, for retention (not the person's other bookings)."""
    subject = Subject(matched_by="booking", booking_ids={booking_id}, linked_only=True)
    _describe(subject)
    return subject


def _grow(subject: Subject) -> None:
    """Add what their bookings say about them, and the other bookings under their email addresses."""
    for _ in range(2):
        emails = Customer.objects.filter(bookings__pk__in=subject.booking_ids).exclude(email="")
        subject.emails |= {e.lower() for e in emails.values_list("email", flat=True)}
        if subject.emails:
            more = Q()
            for email in subject.emails:
                more |= Q(customer__email__iexact=email)
            subject.booking_ids |= set(Booking.objects.filter(more).values_list("pk", flat=True))
    _describe(subject)


def _describe(subject: Subject) -> None:
    """Their identifiers as their bookings hold them."""
    customers = Customer.objects.filter(bookings__pk__in=subject.booking_ids).values_list("pk", "name", "email")
    for pk, name, email in customers:
        subject.customer_ids.add(pk)
        subject.names.add(name)
        if email:
            subject.emails.add(email.lower())
    phones = Customer.objects.filter(pk__in=subject.customer_ids).exclude(phone="").values_list("phone", flat=True)
    subject.phones |= set(phones)
    subject.plates |= set(
        Vehicle.objects.filter(booking_id__in=subject.booking_ids).values_list("registration", flat=True)
    )
    subject.names = {n for n in subject.names if n and n != ERASED_NAME}
    subject.plates.discard(ERASED_PLATE)


ERASED_NAME = "Erased"
ERASED_PLATE = "ERASED"
