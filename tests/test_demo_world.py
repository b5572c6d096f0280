"""The demo world of docs/operations.md section 4 as a newcomer meets it: the `demo` user opens the admin."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in_as_demo() -> Client:
    """Signed in through the admin's login form, as a newcomer does (django-axes wants the request it came with)."""
    client = Client()
    signed_in = client.post("/admin/login/?next=/admin/", {"username": "demo", "password": "demo"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    return client


def test_the_demo_user_opens_the_admin(demo_world):
    client = logged_in_as_demo()
    assert client.get("/admin/").status_code == 200
    for page in ("/admin/carparks/brand/", "/admin/carparks/carpark/", "/admin/auth/user/"):
        assert client.get(page).status_code == 200, page
    # staff edit what the brand sites show there
    from apps.carparks.models import Brand, CarPark

    brand = client.get(f"/admin/carparks/brand/{Brand.objects.get(code='skyline').pk}/change/").text
    carpark = client.get(f"/admin/carparks/carpark/{CarPark.objects.get(code='MAN-T2').pk}/change/").text
    for field in ("base_url", "support_email", "support_phone", "terms", "cancellation_policy", "privacy_notice"):
        assert f'name="{field}"' in brand, field
    for field in ("address", "opening_hours", "directions", "phone"):
        assert f'name="{field}"' in carpark, field


def test_seeding_again_keeps_the_demo_user_a_superuser(demo_world):
    from django.contrib.auth.models import User

    from project.demo import seed_demo

    User.objects.filter(username="demo").update(is_superuser=False, is_staff=False)  # an older demo world
    seed_demo()
    user = User.objects.get(username="demo")
    assert user.is_superuser and user.is_staff


def test_the_demo_world_links_emails_to_the_demo_servers_address(demo_world, monkeypatch):
    from django.core.management import CommandError, call_command

    from apps.carparks.models import Brand, BrandDomain

    call_command("seed_demo", "--base-url", "http://parkgate.lan:8123/")
    assert dict(Brand.objects.values_list("code", "base_url")) == {
        "parkgate-demo": "http://parkgate.lan:8123",
        "skyline": "http://skyline.parkgate.test:8123",  # the same server under Skyline's own host name
    }
    assert BrandDomain.objects.get(host="parkgate.lan").brand.code == "parkgate-demo"  # so its links find the brand
    monkeypatch.setenv("DEMO_BASE_URL", "https://demo.parkgate.test")
    call_command("seed_demo")
    assert Brand.objects.get(code="parkgate-demo").base_url == "https://demo.parkgate.test"
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", "--base-url", "localhost:8000")
    assert refused.value.returncode == 2


def test_the_admin_refuses_a_base_url_on_none_of_the_brands_domains(demo_world):
    from apps.carparks.models import Brand

    client = logged_in_as_demo()
    form = {
        "code": "harbour",
        "name": "Harbour Parking",
        "primary_colour": "#0f766e",
        "accent_colour": "#f59e0b",
        "base_url": "https://harbour.example/",
        "language": "en-gb",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-0-host": "harbour.parkgate.test",
    }
    refused = client.post("/admin/carparks/brand/add/", form)
    assert refused.status_code == 200 and "is none of the brand&#x27;s domains" in refused.text
    assert not Brand.objects.filter(code="harbour").exists()
    added = client.post("/admin/carparks/brand/add/", form | {"base_url": "https://harbour.parkgate.test:8443"})
    assert added.status_code == 302 and Brand.objects.filter(code="harbour").exists()
