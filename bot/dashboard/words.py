"""The words the console shows for stored states (sales, tickets, vouchers, campaigns), each
through the catalogs: the templates look a state up here and translate what they find."""

from __future__ import annotations

from bot.core.i18n import N_

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
