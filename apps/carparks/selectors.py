from apps.carparks.models import Brand, CarPark


def brand_for_host(*, host: str) -> Brand | None:
    """The brand whose domain is `host` (port ignored), or None."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return Brand.objects.filter(domains__host=name.lower()).first()


def brand_carparks(*, brand: Brand) -> list[CarPark]:
    """The car parks this brand sells, by name."""
    return list(brand.carparks.order_by("name"))


def brand_carpark(*, brand: Brand, code: str) -> CarPark | None:
    """One of the brand's car parks by code; None for a car park it does not sell."""
    return brand.carparks.filter(code=code.strip().upper()).first()


def carpark_brand(*, carpark_id: int) -> Brand | None:
    """The brand that speaks for a car park where a booking has none (an agent's customer): its first brand, whose
    site and name the customer meets at the car park (messages, overstay pay links)."""
    return Brand.objects.filter(carparks=carpark_id).order_by("pk").first()
