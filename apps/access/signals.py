"""Domain signals of lane operations, sent synchronously INSIDE the access service's transaction.

They let apps above access (accounting, for the overstay charge) record their part of the same unit of work
without access importing them. A receiver that raises rolls the decision back (the controller gets `retry`).

- visit_overstayed: `visit` (the closed Visit, with its booking), `minutes` (int, past departure + grace)
- visit_held: `visit_id` (a booking's visit held at an exit for overstay, policy `hold`), `lane`, `alert` (the exit
  read's Alert, or None when one was raised moments ago): apps.payments makes its pay link
"""

from django.dispatch import Signal

visit_overstayed = Signal()
visit_held = Signal()
