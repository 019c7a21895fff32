"""The words the console shows for stored states (sales, tickets, vouchers, campaigns), each
through the catalogs: the templates look a state up here and translate what they find."""

from __future__ import annotations

import re
from typing import Any

from bot.core.i18n import N_, Translator
from handlers.ticket_basics import CATEGORY_LABELS
from handlers.tiers import tier_label

SALE_STATES = {
    "scheduled": N_("scheduled"),
    "live": N_("live"),
    "ended": N_("ended"),
    "cancelled": N_("cancelled"),
}
TICKET_STATES = {
    "open": N_("open"),
    "assigned": N_("assigned"),
    "waiting": N_("waiting on the member"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
}
TICKET_FILTERS = {
    "open": N_("Open tickets"),
    "breached": N_("Deadline missed"),
    "all": N_("All"),
}
CAMPAIGN_STATES = {
    "scheduled": N_("scheduled"),
    "sending": N_("sending"),
    "sent": N_("sent"),
}
RECIPIENT_STATES = {
    "muted": N_("opted out"),
    "unreachable": N_("unreachable"),
    "pending": N_("waiting"),
    "sent": N_("sent"),
    "failed": N_("failed"),
}
VOUCHER_STATES = {
    "issued": N_("issued"),
    "used": N_("used"),
    "expired": N_("expired"),
    "cancelled": N_("cancelled"),
}
LEDGER_KINDS = {
    "earn": N_("earned"),
    "spend": N_("spent"),
    "expire": N_("expired"),
    "adjust": N_("adjusted"),
    "reverse": N_("reversed"),
}
MEMBERSHIP_STATES = {"joined": N_("joined"), "left": N_("left")}
SENDERS = {"member": N_("Member"), "staff": N_("Staff")}


def recipient_state(status: str, push_state: str | None, push_error: str | None) -> str:
    """A campaign recipient's outcome, as the results count it (muted first)."""
    if status == "muted" or (push_state == "failed" and push_error == "muted"):
        return "muted"
    if status == "unreachable":
        return "unreachable"
    if push_state in ("sent", "failed"):
        return push_state
    return "pending"


# Why a push failed (the outbox's `last_error`, an app's refusal): codes not listed here are
# an app's own numbers or words, shown as they are.
PUSH_ERRORS = {
    "muted": N_("muted before delivery"),
    "erased": N_("member erased"),
    "channel-off": N_("the app is not set up here"),
    "outbound-off": N_("sending to the app is turned off"),
    "not-in-shell": N_("not in the console now"),
    "forbidden": N_("blocked the bot"),
    "blocked": N_("blocked the bot"),
    "43004": N_("unfollowed the account"),
    "bad-chat-id": N_("unknown chat"),
    "bad-request": N_("refused by the app"),
    "invalid-template": N_("invalid message template"),
    "40037": N_("invalid message template"),
    "hold-expired": N_("did not write again in time"),
    "outside-window": N_("outside the app's reply window"),
    "45015": N_("outside the app's reply window"),
    "45047": N_("over the app's message limit"),
    "rate-limited": N_("the app asked to slow down"),
    "quiet-hours": N_("waiting out quiet hours"),
    "waiting-original": N_("waiting for the original message"),
    "original-not-sent": N_("the original message was not sent"),
    "error": N_("the app failed"),
    "exception": N_("the app failed"),
}
CHANNEL_NAMES = {"telegram": N_("Telegram"), "wechat": N_("WeChat"), "console": N_("Console")}
SEGMENT_LABELS = {
    "tier": N_("Tier"),
    "community": N_("Community"),
    "channel": N_("App"),
    "dormant_days": N_("Quiet for days"),
    "birthday_month": N_("Birthday month"),
    "top_spend_percent": N_("Top spenders (%)"),
}
# A ticket's audit trail is stored in English (one language for the log); shown translated.
TICKET_ACTIONS = {
    "took": N_("took it"),
    "replied": N_("replied"),
    "waiting on the member": N_("waiting on the member"),
    "resolved": N_("resolved"),
    "reopened": N_("reopened"),
    "answered": N_("answered"),
    "closed": N_("closed"),
    "warned: first reply due soon": N_("warned: first reply due soon"),
    "escalated: first reply overdue": N_("escalated: first reply overdue"),
}
ASSIGNED = N_("assigned to {who}")
RATED = N_("rated {score}")
FILED = N_("filed ({category})")
FOLLOWS = N_("{action}, follows {number}")
SYSTEM = N_("system")


def push_error(t: Translator, code: str | None) -> str:
    if not code:
        return "—"
    word = PUSH_ERRORS.get(code)
    return t(word) if word else code


def segment_parts(t: Translator, segment: dict[str, Any]) -> list[str]:
    """The segment's filters in the operator's words ("Tier: Gold, Silver"), in stored order."""
    parts = []
    for key, value in segment.items():
        values = value if isinstance(value, list) else [value]
        if key == "tier":
            shown = [tier_label(t, str(v)) for v in values]
        elif key == "channel":
            shown = [t(CHANNEL_NAMES[v]) if v in CHANNEL_NAMES else str(v) for v in values]
        else:
            shown = [str(v) for v in values]
        label = SEGMENT_LABELS.get(key)
        parts.append(f"{t(label) if label else key}: {', '.join(shown)}")
    return parts


def ticket_action(t: Translator, action: str) -> str:
    """An audit-trail line in the operator's language; a line of unknown shape as it is."""
    if action in TICKET_ACTIONS:
        return t(TICKET_ACTIONS[action])
    if action.startswith("assigned to "):
        return t(ASSIGNED, who=action.removeprefix("assigned to "))
    if action.startswith("rated "):
        return t(RATED, score=action.removeprefix("rated "))
    filed = re.fullmatch(r"filed \(([^)]*)\)(?:, follows (\S+))?", action)
    if filed:
        category, follows = filed.groups()
        label = CATEGORY_LABELS.get(category)
        text = t(FILED, category=t(label) if label else category)
        return t(FOLLOWS, action=text, number=follows) if follows else text
    return action


def actor(t: Translator, name: str) -> str:
    return t(SYSTEM) if name == "system" else name
