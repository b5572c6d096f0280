"""Stripe through its official library: PaymentIntents confirmed on the server with the card element's token,
3-D Secure finished in the browser by Stripe.js (`confirmCardPayment`), webhooks verified by the library.

STRIPE_API_BASE points the library at another server (localstripe in tests and the benchmark). Every write sends
an idempotency key, so a retried call never charges or refunds twice.
"""

from datetime import UTC, datetime

import stripe
from django.conf import settings

from apps.payments.providers import (
    BadSignature,
    BalanceLine,
    CardDeclined,
    Event,
    Intent,
    PayoutInfo,
    ProviderUnavailable,
    RefundResult,
)


def _client() -> stripe.StripeClient:
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    # The library retries network errors itself (with the same idempotency key) before we see them.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES
    )


def _intent(pi) -> Intent:
    pi = pi if isinstance(pi, dict) else pi.to_dict()
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
        is_intent = obj.get("object") == "payment_intent"
        intent_id = obj["id"] if is_intent else (obj.get("payment_intent") or "")
        succeeded = _intent(obj) if is_intent and obj.get("status") == "succeeded" else None
        return Event(
            id=event["id"], type=event["type"], object_id=obj.get("id", ""), intent_id=intent_id, succeeded=succeeded
        )

    def payouts(self, *, created_since: int) -> list[PayoutInfo]:
        """Payouts created since then (every page: the library follows `has_more`)."""
        params = {"limit": 100, "created": {"gte": created_since}}
        found = self._call(lambda: [p.to_dict() for p in _client().v1.payouts.list(params).auto_paging_iter()])
        return [
            PayoutInfo(
                id=p["id"],
                amount_minor=int(p["amount"]),
                currency=str(p["currency"]).upper(),
                status=p["status"],
                arrival_date=datetime.fromtimestamp(int(p["arrival_date"]), UTC).date(),
            )
            for p in found
        ]

    def payout_lines(self, payout_id: str) -> list[BalanceLine]:
        """The balance transactions a payout settled (GET /v1/balance_transactions?payout=...), each charge
        expanded to name its PaymentIntent."""
        params = {"payout": payout_id, "limit": 100, "expand": ["data.source"]}
        found = self._call(
            lambda: [t.to_dict() for t in _client().v1.balance_transactions.list(params).auto_paging_iter()]
        )
        lines = []
        for t in found:
            source = t.get("source") or {}
            source = source if isinstance(source, dict) else {"id": source}
            intent = source.get("payment_intent") if source.get("object") == "charge" else ""
            lines.append(
                BalanceLine(
                    id=t["id"],
                    type=t["type"],
                    amount_minor=int(t["amount"]),
                    fee_minor=int(t.get("fee") or 0),
                    net_minor=int(t["net"]),
                    source_id=str(source.get("id") or ""),
                    intent_id=str((intent.get("id") if isinstance(intent, dict) else intent) or ""),
                )
            )
        return lines
