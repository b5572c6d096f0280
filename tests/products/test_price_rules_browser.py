"""A supervisor edits a calendar range, a weekday rule, a channel allocation and a promo code in Chromium on the
page linked from the price calendar: each refusal shown beside its field first, then the edit made, audited and
read by the next quote."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.core.models import AuditLog
from apps.products.models import ChannelAllocation, PriceRule, PriceSeason, PromoCode
from tests.dashboard.conftest import browser_login, chromium  # noqa: F401  (fixtures)
from tests.support import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"products-rules-{name}.png"), full_page=True)


def test_a_supervisor_edits_ranges_rules_allocations_and_promo_codes(parkgate, demo_world, chromium):  # noqa: F811
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    browser_login(page, parkgate, "demo", "demo")
    assert page.goto(f"{parkgate.http}/dashboard/prices/LHR-T5/").status == 200, page.content()
    page.click("#rules-link")
    expect(page.locator("h1")).to_contain_text("Rules, allocations, promo codes")

    # a range: its rate changed (a range ending before it starts is refused first)
    mg_range = PriceSeason.objects.get(product__carpark__code="LHR-T5", product__code="MG")
    page.click(f"tr[data-season='{mg_range.pk}'] a")
    page.fill("#season-form [name=ends]", "2025-12-31")
    page.click("#season-form button[type=submit]")
    expect(page.locator("#season-form .errorlist")).to_contain_text("a range ends on or after its first day")
    page.fill("#season-form [name=ends]", "2030-12-31")
    page.fill("#season-form [name=daily_rate]", "27.50")
    page.click("#season-form button[type=submit]")
    expect(page.locator("#message")).to_have_text("Range changed.")
    expect(page.locator(f"tr[data-season='{mg_range.pk}'] td").nth(5)).to_have_text("27.50")

    # a weekday rule: Sunday is 7, not 9
    page.select_option("#rule-form [name=product]", "MG")
    page.select_option("#rule-form [name=kind]", "weekday")
    page.fill("#rule-form [name=threshold]", "9")
    page.fill("#rule-form [name=percent]", "10")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#rule-form .errorlist")).to_contain_text("a weekday is 1 (Monday) to 7 (Sunday)")
    page.fill("#rule-form [name=threshold]", "6")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#message")).to_have_text("Rule added.")

    # an agent's share of MG: not more than MG's 40 spaces
    page.select_option("#allocation-form [name=product]", "MG")
    page.select_option("#allocation-form [name=channel]", "skypark")
    page.fill("#allocation-form [name=spaces]", "50")
    page.click("#allocation-form button[type=submit]")
    expect(page.locator("#allocation-form .errorlist")).to_contain_text("0 to 40 (the spaces of MG)")
    shot(page, "1-refused")
    page.fill("#allocation-form [name=spaces]", "5")
    page.click("#allocation-form button[type=submit]")
    expect(page.locator("#message")).to_have_text("Allocation changed.")

    # a promo code: a percentage is at most 100
    page.click("tr[data-promo='WELCOME10'] a")
    page.fill("#promo-form [name=value]", "150")
    page.click("#promo-form button[type=submit]")
    expect(page.locator("#promo-form .errorlist")).to_contain_text("A percentage above 0, at most 100.")
    page.fill("#promo-form [name=value]", "15")
    page.fill("#promo-form [name=max_uses]", "100")
    page.click("#promo-form button[type=submit]")
    expect(page.locator("#message")).to_have_text("Promo code changed.")
    expect(page.locator("tr[data-promo='WELCOME10'] td").nth(1)).to_have_text("15.00%")
    shot(page, "2-done")

    mg_range.refresh_from_db()
    assert mg_range.daily_rate == Decimal("27.50")
    assert PriceRule.objects.filter(product=mg_range.product, kind="weekday", threshold=6, percent=10).exists()
    assert ChannelAllocation.objects.get(product=mg_range.product, channel="skypark").spaces == 5
    assert (PromoCode.objects.get(code="WELCOME10").value, PromoCode.objects.get(code="WELCOME10").max_uses) == (
        Decimal("15.00"),
        100,
    )
    audited = AuditLog.objects.filter(actor__username="demo", action__startswith="products.")
    assert sorted(audited.values_list("action", flat=True)) == [
        "products.channel_allocation_set",
        "products.price_rule_save",
        "products.price_season_update",
        "products.promo_code_save",
    ]
    assert audited.get(action="products.price_season_update").data["before"]["daily_rate"] == "25.00"
    page.context.close()
