"""Domain signals of products, sent synchronously inside the service's transaction (as apps.bookings.signals).

- allocation_stop_sell: a product's sale stopped or resumed on a day for a channel; sent with `agent_id` (int | None:
  the channel's agent, None for the websites or all channels) and `data` (the event's JSON: car park, date, product,
  channel, stopped). Outbound webhooks send it as `allocation.stop_sell`.
- allocation_allowances: asked (not told) by apps.products.holds.allowances with `carpark_id`, `channel` and
  `dates`; a receiver answers {date: spaces} the channel may sell beyond its limits on those dates. apps.insight
  answers with the overbooking allowances staff accepted; with no receiver nothing oversells.
"""

from django.dispatch import Signal

allocation_stop_sell = Signal()
allocation_allowances = Signal()
