"""Staff and card payments (the demo provider: the same services, no card charged): a booking's payments, a partial
refund with a required reason (audited, off the price and the revenue), the failed payments list, roles."""

from decimal import Decimal

import pytest
from django.test import Client

from apps.accounting import selectors as ledger
from apps.bookings.models import Booking
from apps.bookings.services import booking_create
from apps.carparks.models import Brand, CarPark
from apps.core.models import AuditLog
from apps.payments import services
from apps.payments.models import Refund
from apps.payments.providers.demo import DECLINE_TOKEN
from apps.staff.services import staff_member_set
from tests.payments.test_services import STAY

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_see_a_bookings_payments_refund_part_with_a_reason_and_see_what_failed(demo_world, settings):
    settings.PARKGATE_JOBS_BACKEND = "inprocess"  # jobs run in this thread after their commit
    booking = booking_create(
        carpark=CarPark.objects.get(code="LHR-T5"), customer_name="Ann", customer_email="ann@example.com",
        vehicles=[{"registration": "AB12CDE"}], source=Booking.Source.WEB, brand=Brand.objects.get(code="skyline"),
        pending_payment=True, **STAY,
    )  # fmt: skip
    declined = services.payment_start(booking_id=booking.pk)
    with pytest.raises(services.CardDeclined):
        services.payment_card_confirm(payment_id=declined.pk, card_token=DECLINE_TOKEN)
    payment = services.payment_start(booking_id=booking.pk)
    services.payment_card_confirm(payment_id=payment.pk, card_token="demo-card")
    price = Booking.objects.get(pk=booking.pk).price
    accountant = staff_member_set(username="acc", password="correct-horse-battery", carpark_codes=["LHR-T5"],
                                  role="accountant")  # fmt: skip
    operator = staff_member_set(username="op", password="correct-horse-battery", carpark_codes=["LHR-T5"],
                                role="operator")  # fmt: skip
    client = Client()
    client.force_login(operator)
    assert client.get(f"/dashboard/bookings/{booking.reference}/payments").status_code == 404
    client.force_login(accountant)
    page = client.get(f"/dashboard/bookings/{booking.reference}/payments")
    assert page.status_code == 200 and payment.intent_id in page.text and "Failed" in page.text
    url = f"/dashboard/bookings/{booking.reference}/payments"
    no_reason = client.post(url, {"payment": payment.pk, "amount": "5.00", "reason": ""})
    assert no_reason.status_code == 400 and "a reason is required" in no_reason.text
    assert client.post(url, {"payment": payment.pk, "amount": "5.00", "reason": "shuttle late"}).status_code == 302
    refund = Refund.objects.get(payment=payment)
    assert (refund.status, refund.amount, refund.reason, refund.requested_by) == (
        "succeeded", Decimal("5.00"), "shuttle late", accountant,
    )  # fmt: skip
    # The price sold stays; the 5.00 is an allowance off the sale (VAT reversed), then paid back: nothing owed.
    assert Booking.objects.get(pk=booking.pk).price == price and ledger.booking_balance(booking.pk) == 0
    assert AuditLog.objects.filter(action="accounting.allowance", data__reason="shuttle late").exists()
    assert AuditLog.objects.filter(action="payments.refund", actor=accountant).exists()
    failed = client.get("/dashboard/payments/failed")
    assert failed.status_code == 200 and booking.reference in failed.text and "declined" in failed.text
