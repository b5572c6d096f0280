"""Who may see and do what in accounting.

Roles live in apps.staff (StaffAssignment), which sits ABOVE accounting in the import layers, so accounting cannot
import it. The role is read through Django's app registry instead (`apps.get_model`, a runtime lookup of the
model, not an import): a read-only query on one table, kept in this one small module.

- Accounting pages (ledger, trial balance, statements, invoices, period close): superusers and staff holding the
  accountant role at any car park. The ledger is the operator's, one set of books for all car parks.
- Recording a payment on a booking: accountants, and operators or supervisors of the booking's car park.
"""

from django.apps import apps

ACCOUNTANT = "accountant"


def _assignments():
    return apps.get_model("staff", "StaffAssignment").objects


def is_accountant(*, user_id: int, is_superuser: bool = False) -> bool:
    return is_superuser or _assignments().filter(user_id=user_id, role=ACCOUNTANT).exists()


def may_record_payment(*, user_id: int, carpark_id: int, is_superuser: bool = False) -> bool:
    if is_accountant(user_id=user_id, is_superuser=is_superuser):
        return True
    return _assignments().filter(user_id=user_id, carpark_id=carpark_id).exists()
