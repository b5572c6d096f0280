"""Stripe through its official library: PaymentIntents confirmed on the server with the card element's token,
3-D Secure finished in the browser by Stripe.js (`confirmCardPayment`), webhooks verified by the library.

STRIPE_API_BASE points the library at another server (localstripe in tests and the benchmark). Every write sends
an idempotency key, so a retried call never charges or refunds twice.
"""

import stripe
from django.conf import settings

from apps.payments.providers import BadSignature, CardDeclined, Event, Intent, ProviderUnavailable, RefundResult


def _client() -> stripe.StripeClient:
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    # The library retries network errors itself (with the same idempotency key) before we see them.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES
    )


def _intent(pi) -> Intent:
    pi = pi.to_dict()
    error = pi.get("last_payment_error") or {}
    return Intent(
        id=pi["id"],
        status=pi["status"],
        amount_minor=int(pi["amount"]),
        currency=str(pi["currency"]).upper(),
        client_secret=pi.get("client_secret") or "",
        error=(error.get("message") or "") if isinstance(error, dict) else "",
    )


class StripeProvider:
    name = "stripe"

    def _call(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except stripe.CardError as exc:
            raise CardDeclined(exc.user_message or "Your card was declined.") from exc
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise ProviderUnavailable(str(exc)) from exc
        except stripe.StripeError as exc:
            if exc.http_status is None or exc.http_status >= 500:
                raise ProviderUnavailable(str(exc)) from exc
            raise

    def create_intent(self, *, amount_minor: int, currency: str, metadata: dict, idempotency_key: str) -> Intent:
        params = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "payment_method_types": ["card"],
            "metadata": {k: str(v) for k, v in metadata.items()},
        }
        pi = self._call(
            _client().v1.payment_intents.create, params=params, options={"idempotency_key": idempotency_key}
        )
        return _intent(pi)

    def confirm_intent(self, *, intent_id: str, card_token: str, idempotency_key: str) -> Intent:
        """Attach the card the browser tokenised and confirm: `succeeded`, or `requires_action` (3-D Secure, which
        the browser completes with Stripe.js), or CardDeclined with Stripe's message."""
        client = _client()
        token = self._call(client.v1.tokens.retrieve, card_token)
        self._call(
            client.v1.payment_intents.update,
            intent_id,
            params={"payment_method": token["card"]["id"]},
            options={"idempotency_key": f"{idempotency_key}-attach-{card_token}"},
        )
        pi = self._call(
            client.v1.payment_intents.confirm, intent_id, options={"idempotency_key": f"{idempotency_key}-{card_token}"}
        )
        return _intent(pi)

    def retrieve_intent(self, intent_id: str) -> Intent:
        return _intent(self._call(_client().v1.payment_intents.retrieve, intent_id))

    def refund(self, *, intent_id: str, amount_minor: int, idempotency_key: str) -> RefundResult:
        refund = self._call(
            _client().v1.refunds.create,
            params={"payment_intent": intent_id, "amount": amount_minor},
            options={"idempotency_key": idempotency_key},
        )
        return RefundResult(id=refund["id"], status=refund["status"])

    def parse_webhook(self, payload: bytes, signature: str) -> Event:
        if not signature or not settings.STRIPE_WEBHOOK_SECRET:
            raise BadSignature("no Stripe-Signature")
        try:
            event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise BadSignature(str(exc)) from exc
        obj = event.to_dict()["data"]["object"]
        intent_id = obj["id"] if obj.get("object") == "payment_intent" else (obj.get("payment_intent") or "")
        return Event(id=event["id"], type=event["type"], object_id=obj.get("id", ""), intent_id=intent_id)
