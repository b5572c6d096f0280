"""The demo world of docs/operations.md section 4 as a newcomer meets it: the `demo` user opens the admin."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_user_opens_the_admin(demo_world):
    client = Client()
    assert client.login(username="demo", password="demo")
    assert client.get("/admin/").status_code == 200
    for page in ("/admin/carparks/brand/", "/admin/carparks/carpark/", "/admin/auth/user/"):
        assert client.get(page).status_code == 200, page


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
