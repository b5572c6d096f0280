"""Domain signals of lane operations, sent synchronously INSIDE the access service's transaction.

They let apps above access (accounting, for the overstay charge) record their part of the same unit of work
without access importing them. A receiver that raises rolls the decision back (the controller gets `retry`).

- visit_overstayed: `visit` (the closed Visit, with its booking), `minutes` (int, past departure + grace)
"""

from django.dispatch import Signal

visit_overstayed = Signal()
