"""A second language is one catalogue (issue 32): locale/fr/ ships the customer site's and messages' strings, its
.mo compiled from its .po; a brand set to French serves its pages, form errors and messages in French."""

import gettext
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from apps.carparks.models import Brand
from apps.customers.models import CustomerMessage
from tests.customers.conftest import web_booking

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES"


def test_the_shipped_catalogue_is_complete_and_its_mo_is_the_po_compiled(tmp_path):
    fresh = tmp_path / "django.mo"
    done = subprocess.run(  # GNU msgfmt, as `manage.py compilemessages` runs it
        ["msgfmt", "--check", "--statistics", "-o", str(fresh), str(CATALOGUE / "django.po")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "untranslated" not in done.stderr and "fuzzy" not in done.stderr, done.stderr
    with fresh.open("rb") as compiled, (CATALOGUE / "django.mo").open("rb") as shipped:
        assert gettext.GNUTranslations(shipped)._catalog == gettext.GNUTranslations(compiled)._catalog, (
            "locale/fr/LC_MESSAGES/django.mo is not its .po compiled: run manage.py compilemessages"
        )


@pytest.fixture
def english_after():
    """A brand's page activates its language in the request's context, which the test client hands back to the
    test's thread: English again for the tests that follow."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


def test_a_french_brand_speaks_french_on_its_site_and_in_its_messages(outbound, english_after):
    smtp, _ = outbound
    from project.demo import seed_demo

    seed_demo()
    Brand.objects.filter(code="skyline").update(language="fr")
    skyline, demo = Client(HTTP_HOST="skyline.parkgate.test"), Client(HTTP_HOST="localhost")

    home = skyline.get("/").content.decode()
    assert '<html lang="fr">' in home and "Parking aéroport avec Skyline Parking" in home and "Voir le prix" in home
    assert "Politique de confidentialité" in home  # the brand's policies' titles (Brand.POLICIES)
    assert "Get a price" in demo.get("/").content.decode()  # the English brand's pages stay English
    missing = skyline.get("/quote/", {"carpark": "LHR-T5"}).content.decode()  # the form's errors (gettext_lazy)
    assert "Veuillez saisir la date et l\u2019heure d\u2019arrivée." in missing, missing
    wrong = skyline.post("/manage/", {"reference": "PG-NOPE00", "email": "x@example.com"}).content.decode()
    assert "Nous n\u2019avons trouvé aucune réservation" in wrong  # a view's message (gettext)

    booking = web_booking(Brand.objects.get(code="skyline"))
    (sent,) = smtp.received
    assert sent["Subject"] == f"Skyline Parking : réservation {booking.reference} confirmée"
    text = sent.get_body(("plain",)).get_content()
    assert "Bonjour Jane Smith," in text and f"Votre stationnement à {booking.carpark.name} est réservé." in text
    assert '<html lang="fr">' in sent.get_body(("html",)).get_content()
    assert CustomerMessage.objects.get(booking=booking).status == "sent"
