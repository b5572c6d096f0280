from apps.carparks.models import Brand


def brand_for_host(*, host: str) -> Brand | None:
    """The brand whose domain is `host` (port ignored), or None."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return Brand.objects.filter(domains__host=name.lower()).first()
