"""The demo provider: no card is charged. It stands in for Stripe where no keys are set (the embedded default),
so the demo shows the whole flow through the same services: an intent, a "card" step, the payment applied.

Its intents live in our own Payment rows (the only record a demo needs): `demo_<payment id>`. The card token
`demo-decline` is declined, any other succeeds.
"""

import secrets

from apps.payments.providers import BadSignature, CardDeclined, Event, Intent, RefundResult, to_minor

DECLINE_TOKEN = "demo-decline"  # noqa: S105  (a demo card token, no secret)


class DemoProvider:
    name = "demo"

    def _payment(self, intent_id: str):
        from apps.payments.models import Payment

        return Payment.objects.get(provider=self.name, intent_id=intent_id)

    def create_intent(self, *, amount_minor: int, currency: str, metadata: dict, idempotency_key: str) -> Intent:
        intent_id = f"demo_{idempotency_key.rsplit('-', 1)[-1]}"
        return Intent(intent_id, "requires_payment_method", amount_minor, currency.upper(), f"{intent_id}_secret")

    def confirm_intent(self, *, intent_id: str, card_token: str, idempotency_key: str) -> Intent:
        payment = self._payment(intent_id)
        if card_token == DECLINE_TOKEN:
            raise CardDeclined("Your card was declined (demo).")
        return Intent(intent_id, "succeeded", to_minor(payment.amount), payment.currency)

    def retrieve_intent(self, intent_id: str) -> Intent:
        payment = self._payment(intent_id)
        paid = payment.status in (payment.Status.SUCCEEDED, payment.Status.MISMATCH)
        status = "succeeded" if paid else "requires_payment_method"
        return Intent(intent_id, status, to_minor(payment.amount), payment.currency)

    def refund(self, *, intent_id: str, amount_minor: int, idempotency_key: str) -> RefundResult:
        return RefundResult(id=f"demo_re_{secrets.token_hex(6)}", status="succeeded")

    def parse_webhook(self, payload: bytes, signature: str) -> Event:
        raise BadSignature("the demo provider sends no webhooks")

    def payouts(self, *, created_since: int) -> list:
        return []  # no card is charged, so nothing is paid out

    def payout_lines(self, payout_id: str) -> list:
        return []
