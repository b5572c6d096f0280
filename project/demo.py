"""The demo world of docs/operations.md section 4, created idempotently (safe to run again)."""

from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.agents.models import Agent, AgentMailbox
from apps.carparks.models import Brand, BrandDomain, CarPark, Lane, Tariff, TariffBand
from apps.products.models import Extra, Fare, PriceRule, PriceSeason, Product, PromoCode
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
# What a customer checks before booking (docs/operations.md 4). Phone numbers are Ofcom's drama ranges.
BRAND_PAGES = {
    "parkgate-demo": {
        "support_email": "help@demo.parkgate.test",
        "support_phone": "020 7946 0123",
    },
    "skyline": {
        "support_email": "help@skyline.parkgate.test",
        "support_phone": "0161 496 0123",
    },
}
POLICIES = {
    "terms": (
        "{brand} sells parking at the car parks shown on this site. A booking is for the car park, the dates and "
        "the vehicles it names; its price is the one shown when you book, paid on arrival.\n\n"
        "The barrier opens for a booked registration from two hours before the arrival time. Please leave by the "
        "departure time: a later departure may be charged at the car park's daily rate.\n\n"
        "Vehicles are parked at the owner's risk. Please follow the staff's and the signs' directions on site."
    ),
    "cancellation_policy": (
        "You pay when you book. What a cancellation refunds depends on the fare you chose, shown before you pay and "
        "on your booking's page (Manage booking): a Flexible fare is refunded in full until 24 hours before your "
        "arrival; a Saver fare is not refundable. A change that costs more is paid before it applies; one that costs "
        "less is refunded to your card.\n\n"
        "Once you have arrived, the booking can no longer be cancelled online: please ask the car park's staff."
    ),
    "privacy_notice": (
        "{brand} keeps your name, email address, phone number, vehicle registrations and flight numbers to run "
        "your booking, and the car park's cameras read number plates to open the barriers.\n\n"
        "Plate reads of vehicles without a booking are deleted after 90 days. We do not sell your data or use it "
        "for advertising.\n\n"
        "To see or delete what we hold about you, write to {email}."
    ),
}
CARPARK_INFO = {
    "LHR-T5": {
        "address": "Heathrow Terminal 5\nWallis Road\nLongford\nHounslow\nTW6 2GA",
        "opening_hours": "Open 24 hours, every day",
        "directions": (
            "From the M25, leave at junction 14 and follow the signs for Terminal 5, then for Parking.\n"
            "Drive up to a barrier: the camera reads your number plate and the barrier opens. "
            "A shuttle bus leaves for the terminal every 10 minutes."
        ),
        "phone": "020 7946 0555",
    },
    "MAN-T2": {
        "address": "Manchester Airport\nTerminal 2\nManchester\nM90 1QX",
        "opening_hours": "Open 24 hours, every day",
        "directions": (
            "From the M56, leave at junction 5 and follow the signs for Terminal 2, then for Parking.\n"
            "Drive up to a barrier: the camera reads your number plate and the barrier opens. "
            "The terminal is a five-minute walk along the covered path."
        ),
        "phone": "0161 496 0555",
    },
}
# What each car park sells (docs/operations.md 4): products (code, name, spaces, description), the same two fares on
# each, extras, and a calendar range or rules where a product's price is not simply the car park's tariff.
PRODUCTS = {
    "LHR-T5": [
        ("PR", "Park and Ride", 360, "Park yourself; a shuttle bus takes you to the terminal every 10 minutes."),
        ("MG", "Meet and Greet", 40, "A driver meets you at the terminal's drop-off and parks your car."),
    ],
    "MAN-T2": [("PR", "Park and Ride", 150, "Park yourself; the terminal is a five-minute walk.")],
}
FARES = [  # code, name, refundable, cut-off hours, price percent
    ("flex", "Flexible", True, 24, "0"),
    ("saver", "Saver", False, 0, "-10"),
]
MG_RANGE = ("2026-01-01", "2030-12-31", "25.00", "40.00", "8:20.00")  # starts, ends, daily, minimum, bands
PR_RULES = [("occupancy", 70, "10"), ("occupancy", 85, "20"), ("occupancy", 95, "30")]  # dearer as days fill
EXTRAS = {"LHR-T5": [("EV", "EV charging", "8.00", "day", 10)]}
PROMOS = [("WELCOME10", "parkgate-demo", "percent", "10")]
AGENT_PRODUCTS = {"product_codes": "PR MG", "default_product": "PR", "default_fare": "flex"}

AGENTS = [
    ("skypark", "SkyPark Agents", "labels", "0.15"),
    ("holidayx", "HolidayX", "csv", "0.12"),
    ("legacy80", "Legacy 80 Reservations", "fixed", "0.10"),
]


DEFAULT_BASE_URL = "http://localhost:8000"


def brand_base_urls(base_url: str) -> dict[str, str]:
    """The demo server's address is Parkgate Demo's; Skyline is the same server under its own host name."""
    parts = urlsplit(base_url.rstrip("/"))
    port = f":{parts.port}" if parts.port else ""
    return {"parkgate-demo": parts.geturl(), "skyline": f"{parts.scheme}://skyline.parkgate.test{port}"}


@transaction.atomic
def seed_demo(base_url: str = DEFAULT_BASE_URL) -> None:
    """`base_url`: where the demo server answers (links in emails start there); its host becomes a demo domain."""
    brands = {}
    base_urls = brand_base_urls(base_url)
    for code, name, colour, hosts in BRANDS:
        pages = BRAND_PAGES[code]
        brands[code], _ = Brand.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "primary_colour": colour,
                "logo_text": name.split()[0],
                "base_url": base_urls[code],
                **pages,
                **{field: text.format(brand=name, email=pages["support_email"]) for field, text in POLICIES.items()},
            },
        )
        for host in {*hosts, urlsplit(base_urls[code]).hostname}:
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
                **CARPARK_INFO[code],
            },
        )
        carpark.brands.set([brands[b] for b in sold_by])
        for lane_code, direction in lanes:
            Lane.objects.update_or_create(carpark=carpark, code=lane_code, defaults={"direction": direction})
        carparks.append(carpark)
        _seed_tariffs(carpark, brands)
        _seed_products(carpark)
    for code, brand, kind, value in PROMOS:
        PromoCode.objects.update_or_create(
            code=code, defaults={"brand": brands[brand], "kind": kind, "value": Decimal(value), "active": True}
        )
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
                **AGENT_PRODUCTS,
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


def _seed_products(carpark: CarPark) -> None:
    """The car park's default product (made with it) becomes PR; then PR, MG, their fares, calendars and extras."""
    products = PRODUCTS[carpark.code]
    if not Product.objects.filter(carpark=carpark, code=products[0][0]).exists():
        Product.objects.filter(carpark=carpark, is_default=True).update(code=products[0][0])
    Product.objects.filter(carpark=carpark).exclude(code=products[0][0]).update(is_default=False)
    for position, (code, name, spaces, description) in enumerate(products):
        product, _ = Product.objects.update_or_create(
            carpark=carpark,
            code=code,
            defaults={
                "name": name,
                "spaces": spaces,
                "description": description,
                "position": position,
                "is_default": position == 0,
            },
        )
        for fare_position, (fare, fare_name, refundable, cutoff, percent) in enumerate(FARES):
            Fare.objects.update_or_create(
                product=product,
                code=fare,
                defaults={
                    "name": fare_name,
                    "refundable": refundable,
                    "refund_cutoff_hours": cutoff,
                    "price_percent": Decimal(percent),
                    "position": fare_position,
                },
            )
        if code == "MG":
            starts, ends, daily, minimum, bands = MG_RANGE
            PriceSeason.objects.update_or_create(
                product=product,
                brand=None,
                channel="",
                starts=date.fromisoformat(starts),
                defaults={
                    "ends": date.fromisoformat(ends),
                    "daily_rate": Decimal(daily),
                    "minimum_charge": Decimal(minimum),
                    "bands": bands,
                },
            )
        if code == "PR":
            for kind, threshold, percent in PR_RULES:
                PriceRule.objects.update_or_create(
                    product=product, kind=kind, threshold=threshold, defaults={"percent": Decimal(percent)}
                )
    for code, name, price, per, stock in EXTRAS.get(carpark.code, []):
        Extra.objects.update_or_create(
            carpark=carpark,
            code=code,
            defaults={"name": name, "price": Decimal(price), "per": per, "stock_per_day": stock},
        )
