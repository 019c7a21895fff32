"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

One browser session for the whole walk (it is the slowest test there is): log in, see the
overview's charts drawn, switch the period, find a member, log out; a screenshot of the
overview is left in tests/artifacts/ (and the test's tmp dir). Chromium is never downloaded:
the test uses /usr/bin/chromium (`.ci/run` installs the Debian package when it is missing).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.http.server import create_app
from tests.conftest import ADMIN_TOKEN
from tests.stats_seed import seed

CHROMIUM = os.environ.get("MEMBERBOT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
WALK_SECONDS = 120  # the whole walk, so a stuck browser fails the test instead of hanging
PHONE = {"width": 390, "height": 844}
# (nav link, list table, a detail page, a figure of it and its value)
NEW_PAGES = [
    ("Flash sales", "sales", "flashsales/S1", "sale-claimed", "3 / 5"),
    ("Tickets", "tickets", "tickets/C-000003", "ticket-late", "yes"),
    ("Campaigns", "campaigns", "campaigns/1", "campaign-recipients", "5"),
]

pytestmark = pytest.mark.browser


def _chromium() -> str:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_operator_walks_through_the_dashboard(core, tmp_path):
    executable = _chromium()
    from playwright.async_api import async_playwright, expect

    await seed(core.services.db)
    server = TestServer(create_app(core, background=False))
    await server.start_server()
    base = str(server.make_url("/dashboard/"))
    try:
        async with asyncio.timeout(WALK_SECONDS), async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable, headless=True)
            try:
                page = await browser.new_page(locale="en-US")
                page.set_default_timeout(15_000)

                await page.goto(base)
                await expect(page).to_have_url(base + "login")
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("button[type=submit]")

                await expect(page.locator("h1")).to_have_text("Overview")
                await expect(page.locator("#members-total")).to_have_text("5")
                charts = page.locator(".chart svg")
                await expect(charts).to_have_count(6)
                drawn = await page.evaluate(
                    "() => [...document.querySelectorAll('.chart svg')].map(s => "
                    "[s.getBoundingClientRect().width, "
                    "s.querySelectorAll('rect, path').length])"
                )
                assert all(width > 100 and shapes > 3 for width, shapes in drawn), drawn
                ARTIFACTS.mkdir(exist_ok=True)
                shot = await page.screenshot(full_page=True)
                for folder in (ARTIFACTS, tmp_path):
                    (folder / "dashboard-overview.png").write_bytes(shot)
                assert len(shot) > 10_000

                await page.click("#period-7")
                await expect(page).to_have_url(base + "?days=7")
                await expect(page.locator("#period-7")).to_have_class("on")

                await page.click("nav >> text=Members")
                await page.select_option("select[name=channel]", "telegram")
                await page.fill("input[name=external_id]", "1002")
                await page.click("#search button")
                await expect(page).to_have_url(base + "members/telegram/1002")
                await expect(page.locator("#member-points")).to_have_text("17")
                await expect(page.locator("#ledger tr")).to_have_count(4)  # header + 3
                await expect(page.locator("#member-claims td").first).to_have_text("S1")
                await page.click("#member-tickets a[href='/dashboard/tickets/C-000001']")
                await expect(page.locator("#ticket-state")).to_have_text("closed")

                # The console's lists and one detail page of each, through the nav.
                for link, table, href, card, figure in NEW_PAGES:
                    await page.click(f"nav >> text={link}")
                    await expect(page.locator("h1")).to_have_text(link)
                    assert await page.locator(f"#{table} tr").count() > 1, link
                    await page.click(f"#{table} a[href='/dashboard/{href}']")
                    await expect(page.locator(f"#{card}")).to_have_text(figure)
                await page.click("nav >> text=Rewards")
                await expect(page.locator("#rewards td").first).to_contain_text("Mug")

                await page.click("#logout")
                await expect(page).to_have_url(base + "login")
                await page.goto(base)
                await expect(page).to_have_url(base + "login")

                phone = await browser.new_page(viewport=PHONE, locale="zh-CN")
                await phone.goto(base + "login")
                await phone.fill("#token", ADMIN_TOKEN)
                await phone.click("button[type=submit]")
                await expect(phone.locator("h1")).to_have_text("概览")
                widths = await phone.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth]"
                )
                assert widths[0] <= widths[1], widths  # nothing wider than a phone
                for path, card, figure in (
                    ("campaigns/1", "#campaign-recipients", "5"),
                    ("members/wechat/o-carol", "#member-points", "65"),
                ):
                    await phone.goto(base + path)
                    await expect(phone.locator(card)).to_have_text(figure)
                    widths = await phone.evaluate(
                        "() => [document.documentElement.scrollWidth, window.innerWidth]"
                    )
                    assert widths[0] <= widths[1], (path, widths)
                (tmp_path / "dashboard-phone.png").write_bytes(
                    await phone.screenshot(full_page=True)
                )
            finally:
                await browser.close()
    finally:
        await server.close()
