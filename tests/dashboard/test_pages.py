"""The dashboard without a browser: who gets in, what each page shows, in which language."""

from __future__ import annotations

import re

import pytest

from storage.models import OutboxPush
from tests.conftest import START
from tests.http.conftest import AUTH
from tests.stats_seed import seed

PAGES = [
    "/dashboard/",
    "/dashboard/?days=7",
    "/dashboard/members",
    "/dashboard/members/telegram/1002",
    "/dashboard/communities",
    "/dashboard/outbox",
    "/dashboard/flashsales",
    "/dashboard/flashsales/S1",
    "/dashboard/rewards",
    "/dashboard/tickets",
    "/dashboard/tickets/C-000003",
    "/dashboard/campaigns",
    "/dashboard/campaigns/1",
]


async def _failed_push(core) -> None:
    async with core.services.db.transaction() as s:
        s.add(
            OutboxPush(
                dedupe_key="dormant:1",
                channel="telegram",
                chat_id="1002",
                kind="dormant",
                mode="send",
                payload={"text": "We miss you"},
                state="failed",
                attempts=3,
                next_attempt_at=START,
                last_error="forbidden: bot was blocked",
                created_at=START,
                updated_at=START,
            )
        )


@pytest.mark.parametrize("path", PAGES)
async def test_without_login_every_page_sends_to_the_login_form(operator, core, path):
    await seed(core.services.db)

    status, body, headers = await operator.get(path)

    assert (status, headers["Location"]) == (303, "/dashboard/login")
    assert "alice" not in body and "Members" not in body


async def test_dashboard_without_slash_goes_to_the_overview(operator):
    status, _, headers = await operator.get("/dashboard")
    assert (status, headers["Location"]) == (308, "/dashboard/")


async def test_without_login_forms_are_refused(operator):
    csrf = await operator.csrf()
    for path in ("/dashboard/logout", "/dashboard/members"):
        status, _, _ = await operator.post(path, {"csrf": csrf, "channel": "x"})
        assert status == 403, path


async def test_wrong_token_or_missing_csrf_does_not_log_in(operator):
    status, body, _ = await operator.log_in("wrong")
    assert status == 401 and "Wrong token." in body

    status, _, _ = await operator.post("/dashboard/login", {"token": "test-admin-token"})
    assert status == 403
    status, _, _ = await operator.get("/dashboard/")
    assert status == 303


async def test_login_sets_a_strict_httponly_session_cookie(operator):
    status, _, headers = await operator.log_in()

    assert (status, headers["Location"]) == (303, "/dashboard/")
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("memberbot_dashboard=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard"):
        assert attribute in cookie
    assert "test-admin-token" not in cookie


async def test_overview_shows_the_figures_and_svg_charts(operator, core):
    await seed(core.services.db)
    await operator.log_in()

    status, body, headers = await operator.get("/dashboard/?days=30")

    assert status == 200
    assert re.search(r'id="members-total">5<', body)
    assert body.count("<svg") == 6
    assert "<script" not in body
    assert "script-src" not in headers["Content-Security-Policy"]  # none: default-src 'none'
    # Nothing loaded from elsewhere: the only address is the SVG namespace.
    assert set(re.findall(r"https?://[^\s\"'<>]+", body)) == {"http://www.w3.org/2000/svg"}
    assert 'class="on" id="period-30"' in body


def _row(body: str, table: str) -> list[str]:
    """The cells of a one-row table of the overview."""
    found = re.search(rf'<table id="{table}">.*?</tr>\s*<tr>(.*?)</tr>', body, re.S)
    assert found, table
    return re.findall(r"<td>(.*?)</td>", found.group(1))


async def test_overview_shows_flash_sales_redemptions_complaints_and_campaigns(operator, core):
    await seed(core.services.db)
    await operator.log_in()

    _, body, _ = await operator.get("/dashboard/?days=30&lang=en")

    assert _row(body, "flash-sales") == ["3", "1", "11", "6", "54.5%", "5", "1"]
    assert _row(body, "redemptions") == ["3", "1", "1", "1", "24", "8"]
    assert _row(body, "complaints") == ["5", "2", "3", "50.0%", "2", "3.0", "3.5"]
    assert _row(body, "campaigns") == ["2", "6", "1", "1", "2", "1", "1"]
    assert "not built" not in body and "Coming soon" not in body


async def test_overview_of_an_empty_programme_shows_dashes_not_errors(operator):
    await operator.log_in()

    status, body, _ = await operator.get("/dashboard/?lang=en")

    assert status == 200
    assert _row(body, "complaints") == ["0", "0", "0", "—", "0", "—", "—"]
    assert _row(body, "flash-sales")[4] == "—"


async def test_period_selector_changes_the_figures(operator, core):
    await seed(core.services.db)
    await operator.log_in()

    _, month, _ = await operator.get("/dashboard/?days=30")
    _, week, _ = await operator.get("/dashboard/?days=7")

    assert 'class="on" id="period-7"' in week
    assert "2026-03-04" in week and "2026-02-09" in month  # first days of the periods


async def test_member_search_and_page_with_ledger(operator, core):
    await seed(core.services.db)
    await operator.log_in()
    csrf = await operator.csrf("/dashboard/members")

    status, _, headers = await operator.post(
        "/dashboard/members", {"csrf": csrf, "channel": "telegram", "external_id": "1002"}
    )
    assert (status, headers["Location"]) == (303, "/dashboard/members/telegram/1002")
    status, body, _ = await operator.get(headers["Location"])

    assert status == 200
    assert 'id="member-points">17<' in body
    assert body.count("<tr><td>2026-") == 3  # bob's three ledger entries


async def test_member_search_without_csrf_is_refused_and_unknown_is_404(operator, core):
    await seed(core.services.db)
    await operator.log_in()
    status, _, _ = await operator.post(
        "/dashboard/members", {"channel": "telegram", "external_id": "1002"}
    )
    assert status == 403

    csrf = await operator.csrf("/dashboard/members")
    status, body, _ = await operator.post(
        "/dashboard/members", {"csrf": csrf, "channel": "wechat", "external_id": "nobody"}
    )
    assert status == 404 and "No member with the account wechat nobody." in body


async def test_communities_and_failed_pushes_with_why(operator, core):
    await seed(core.services.db)
    await _failed_push(core)
    await operator.log_in()

    _, communities, _ = await operator.get("/dashboard/communities")
    _, pushes, _ = await operator.get("/dashboard/outbox")

    assert "Coffee lovers" in communities and "VIP lounge" in communities
    assert "forbidden: bot was blocked" in pushes and "dormant" in pushes


@pytest.mark.parametrize(
    ("lang", "word"), [("zh_CN", "概览"), ("zh_TW", "概覽"), ("en", "Overview")]
)
async def test_pages_speak_the_operators_language(operator, lang, word):
    await operator.log_in()

    _, body, _ = await operator.get(f"/dashboard/?lang={lang}")
    _, again, _ = await operator.get("/dashboard/members")  # the choice is kept

    assert f"<h1>{word}</h1>" in body
    assert word in again


async def test_logout_ends_the_session(operator):
    await operator.log_in()
    csrf = await operator.csrf("/dashboard/")

    status, _, headers = await operator.post("/dashboard/logout", {"csrf": csrf})

    assert (status, headers["Location"]) == (303, "/dashboard/login")
    status, _, _ = await operator.get("/dashboard/")
    assert status == 303


async def test_logout_without_csrf_is_refused_and_keeps_the_session(operator):
    await operator.log_in()

    status, _, _ = await operator.post("/dashboard/logout", {"csrf": "forged"})

    assert status == 403
    status, _, _ = await operator.get("/dashboard/")
    assert status == 200


async def test_a_forged_cookie_is_no_session(operator):
    operator.http.cookie_jar.update_cookies({"memberbot_dashboard": "gAAAAAforged"})

    status, _, headers = await operator.get("/dashboard/")

    assert (status, headers["Location"]) == (303, "/dashboard/login")


async def test_scripts_may_use_the_bearer_token(operator):
    status, body, _ = await operator.get("/dashboard/", **AUTH)
    assert status == 200 and "<svg" in body
