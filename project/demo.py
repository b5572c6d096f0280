"""The demo world of docs/operations.md section 4, created idempotently (safe to run again)."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.agents.models import Agent, AgentMailbox
from apps.carparks.models import Brand, BrandDomain, CarPark, Lane, Tariff, TariffBand
from apps.staff.models import StaffAssignment

BRANDS = [
    ("parkgate-demo", "Parkgate Demo", "#1d4ed8", ["localhost", "127.0.0.1", "demo.parkgate.test"]),
    ("skyline", "Skyline Parking", "#7c3aed", ["skyline.parkgate.test"]),
]
CARPARKS = [
    (
        "LHR-T5",
        "Heathrow Terminal 5",
        400,
        [("N-IN", "entry"), ("N-OUT", "exit"), ("S-IN", "entry"), ("S-OUT", "exit")],
        ["parkgate-demo", "skyline"],
    ),
    ("MAN-T2", "Manchester Terminal 2", 150, [("IN1", "entry"), ("OUT1", "exit")], ["skyline"]),
]
# Tariffs: car park -> (daily rate, minimum charge, bands [(from day, daily rate)], per-brand daily rate overrides)
TARIFFS = {
    "LHR-T5": ("15.00", "25.00", [(4, "10.00")], {"skyline": "13.50"}),
    "MAN-T2": ("9.00", "18.00", [(8, "6.00")], {}),
}
AGENTS = [
    ("skypark", "SkyPark Agents", "labels", "0.15"),
    ("holidayx", "HolidayX", "csv", "0.12"),
    ("legacy80", "Legacy 80 Reservations", "fixed", "0.10"),
]


@transaction.atomic
def seed_demo() -> None:
    brands = {}
    for code, name, colour, hosts in BRANDS:
        brands[code], _ = Brand.objects.update_or_create(
            code=code, defaults={"name": name, "primary_colour": colour, "logo_text": name.split()[0]}
        )
        for host in hosts:
            BrandDomain.objects.update_or_create(host=host, defaults={"brand": brands[code]})
    carparks = []
    for code, name, capacity, lanes, sold_by in CARPARKS:
        carpark, _ = CarPark.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "capacity": capacity,
                "timezone": "Europe/London",
                "currency": "GBP",
                "min_score": Decimal("0.70"),
                "repeat_window_s": 15,
                "stale_after_s": 30,
                "early_arrival_min": 120,
                "grace_min": 60,
                "overstay_policy": "open_and_flag",
                "anti_passback": "hard",
            },
        )
        carpark.brands.set([brands[b] for b in sold_by])
        for lane_code, direction in lanes:
            Lane.objects.update_or_create(carpark=carpark, code=lane_code, defaults={"direction": direction})
        carparks.append(carpark)
        _seed_tariffs(carpark, brands)
    for code, name, fmt, rate in AGENTS:
        agent, _ = Agent.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "email_format": fmt,
                "commission_rate": Decimal(rate),
                "active": True,
                "allowed_networks": "",
                "allowed_senders": "",
                "smtp_username": "",
            },
        )
        agent.carparks.set(carparks)
        AgentMailbox.objects.update_or_create(address=f"{code}@bookings.parkgate.test", defaults={"agent": agent})
    # A superuser, so a newcomer can open the admin too; `check --deploy` refuses to go live while it exists.
    user, created = get_user_model().objects.update_or_create(
        username="demo", defaults={"is_staff": True, "is_superuser": True}
    )
    if created or not user.check_password("demo"):
        user.set_password("demo")
        user.save()
    for carpark in carparks:
        StaffAssignment.objects.update_or_create(user=user, carpark=carpark, defaults={"role": "supervisor"})


def _seed_tariffs(carpark: CarPark, brands: dict[str, Brand]) -> None:
    daily, minimum, bands, overrides = TARIFFS[carpark.code]
    for brand, rate in [(None, daily), *((brands[b], r) for b, r in overrides.items())]:
        tariff, _ = Tariff.objects.update_or_create(
            carpark=carpark, brand=brand, defaults={"daily_rate": Decimal(rate), "minimum_charge": Decimal(minimum)}
        )
        for from_day, band_rate in bands:
            TariffBand.objects.update_or_create(
                tariff=tariff, from_day=from_day, defaults={"daily_rate": Decimal(band_rate)}
            )
