from django.conf import settings
from django.db import models


class StaffAssignment(models.Model):
    """A staff member's role at one car park: they see and act on only the car parks they are assigned to."""

    class Role(models.TextChoices):
        OPERATOR = "operator", "Operator (view, manual barrier control)"
        SUPERVISOR = "supervisor", "Supervisor (also policies, permits, block list)"
        ACCOUNTANT = "accountant", "Accountant (accounting views only)"
        DRIVER = "driver", "Driver (meet-and-greet tasks, keys, condition photos: apps.ground)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="assignments", on_delete=models.CASCADE)
    carpark = models.ForeignKey("carparks.CarPark", related_name="staff", on_delete=models.CASCADE)
    role = models.CharField(max_length=10, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "carpark"], name="one_role_per_carpark")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} @ {self.carpark.code}"
