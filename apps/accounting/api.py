"""Payments over HTTP (JSON), for staff tools and payment terminals acting with a staff session.

`router` is a ninja Router; this module mounts it on its own small API at /accounting/api/ (session auth with
CSRF, like the staff pages; see apps/accounting/urls.py). To serve it from another NinjaAPI instead:
`other_api.add_router("/accounting/", router)` (its operations then use that API's auth; the handlers here
read the staff user from `request.auth`). Errors are JSON `{"error": CODE, "detail": ...}` as in the agents' API.

- GET  /accounting/api/bookings/{reference}           -> the booking's account: price, balance, payments
- POST /accounting/api/bookings/{reference}/payments  {"kind": "payment"|"refund", "method": "cash"|"card"|
  "bank_transfer", "amount": "45.00", "external_reference": "..."} -> 201 with the payment and the new balance;
  422 when the amount exceeds what is owed (or owed back); 404 for a booking the caller may not see.
"""

from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.http import JsonResponse
from ninja import Field, NinjaAPI, Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyCookie

from apps.accounting import permissions, selectors, services
from apps.accounting.models import Payment
from apps.core.concurrency import run_sync


class StaffSession(APIKeyCookie):
    """Django's session cookie, resolved asynchronously (the stock SessionAuth touches request.user, a sync query)."""

    param_name = settings.SESSION_COOKIE_NAME

    async def authenticate(self, request, key):
        user = await request.auser()
        return user if user.is_authenticated else None


class PaymentIn(Schema):
    kind: str = Field(Payment.Kind.PAYMENT, pattern="^(payment|refund)$")
    method: str = Field(..., pattern="^(cash|card|bank_transfer)$")
    amount: Decimal = Field(..., gt=0, max_digits=12, decimal_places=2)
    external_reference: str = Field("", max_length=100)
    received_at: datetime | None = None


class PaymentOut(Schema):
    kind: str
    method: str
    amount: Decimal
    currency: str
    external_reference: str
    received_at: datetime


class LineOut(Schema):
    date: date
    kind: str
    memo: str
    amount: Decimal


class AccountOut(Schema):
    reference: str
    carpark: str
    status: str
    currency: str
    price: Decimal
    balance: Decimal
    lines: list[LineOut]
    payments: list[PaymentOut]


class PaymentCreated(Schema):
    payment: PaymentOut
    balance: Decimal


class ErrorOut(Schema):
    error: str
    detail: str = ""


router = Router(tags=["accounting"])


def _error(status: int, code: str, detail: str = "") -> tuple[int, dict]:
    return status, {"error": code, "detail": detail}


def _visible_booking(user, reference: str) -> dict | None:
    """The booking's statement if this staff member may see its account (else None: a 404, like the pages)."""
    booking_id = selectors.booking_id_by_reference(reference)
    if booking_id is None:
        return None
    statement = selectors.booking_statement(booking_id=booking_id)
    allowed = permissions.may_record_payment(
        user_id=user.pk, carpark_id=statement["booking"]["carpark_id"], is_superuser=user.is_superuser
    )
    return statement if allowed else None


def _account(statement: dict) -> dict:
    booking = statement["booking"]
    return {
        **{k: booking[k] for k in ("reference", "carpark", "status", "currency", "price")},
        "balance": statement["balance"],
        "lines": [
            {
                "date": x["transaction__date"],
                "kind": x["transaction__kind"],
                "memo": x["transaction__memo"],
                "amount": x["amount"],
            }
            for x in statement["lines"]
        ],
        "payments": [{**p, "currency": booking["currency"]} for p in statement["payments"]],
    }


@router.get("/bookings/{reference}", response={200: AccountOut, 404: ErrorOut})
async def booking_account(request, reference: str):
    statement = await run_sync(_visible_booking, request.auth, reference)
    if statement is None:
        return _error(404, "not_found", "no such booking")
    return 200, _account(statement)


@router.post("/bookings/{reference}/payments", response={201: PaymentCreated, 404: ErrorOut, 422: ErrorOut})
async def payment_create(request, reference: str, body: PaymentIn):
    def record():
        statement = _visible_booking(request.auth, reference)
        if statement is None:
            return _error(404, "not_found", "no such booking")
        try:
            payment = services.payment_record(
                booking_id=statement["booking"]["id"],
                recorded_by=request.auth,
                **body.model_dump(exclude_none=True),
            )
        except services.PostingError as exc:
            return _error(422, "payment_refused", str(exc))
        return 201, {"payment": payment, "balance": selectors.booking_balance(payment.booking_id)}

    return await run_sync(record)


api = NinjaAPI(
    title="Parkgate accounting (staff)",
    version="1",
    urls_namespace="accounting-api",
    auth=StaffSession(),  # checks CSRF (X-CSRFToken) like the staff pages
)
api.add_router("/", router)


@api.exception_handler(AuthenticationError)
def _unauthorised(request, exc):
    return JsonResponse({"error": "unauthorized", "detail": "log in as staff first"}, status=401)


@api.exception_handler(ValidationError)
def _invalid(request, exc):
    return JsonResponse({"error": "invalid", "detail": exc.errors}, status=422)


@api.exception_handler(HttpError)
def _http_error(request, exc):
    code = {403: "forbidden", 404: "not_found", 405: "not_allowed"}.get(exc.status_code, "error")
    return JsonResponse({"error": code, "detail": str(exc)}, status=exc.status_code)
