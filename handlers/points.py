"""`/points`: balance, what expires soon, and the last ten ledger entries."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.i18n import N_, Translator
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from storage import ledger
from storage.models import LedgerEntry

router = Router("points")

# A feature that writes a new reason adds its label here (in the member's words).
REASON_LABELS = {
    "checkin": N_("Check-in"),
    "order": N_("Purchase"),
    "refund": N_("Refund"),
    "expired": N_("Expired"),
    "link-merge": N_("Linked accounts: duplicate check-in"),
    "invite-welcome": N_("Welcome gift for joining through an invitation"),
    "invite-reward": N_("Reward for inviting a friend"),
    "invite-void": N_("Invitation cancelled"),
}
ADJUSTMENT = N_("Adjustment by the shop")
ADJUSTMENT_NOTE = N_("Adjustment by the shop ({note})")


def reason_label(t: Translator, reason: str) -> str:
    label = REASON_LABELS.get(reason)
    return t(label) if label else reason


def entry_text(t: Translator, entry: LedgerEntry) -> str:
    """What a ledger entry was for; an operator's adjustment is the shop's, with their reason
    (written by the operator, in whatever language) as a note."""
    if entry.kind == ledger.ADJUST:
        return t(ADJUSTMENT_NOTE, note=entry.reason) if entry.reason else t(ADJUSTMENT)
    return reason_label(t, entry.reason)


def entry_line(t: Translator, entry: LedgerEntry, ctx: Context) -> str:
    when = entry.created_at.astimezone(ctx.services.settings.tz).strftime("%m-%d")
    return f"{when} {entry.amount:+d} {entry_text(t, entry)}"


@router.action(
    "points",
    commands=("points",),
    keywords={"zh_CN": ("积分",), "zh_TW": ("積分",), "en": ("points",)},
    menu="POINTS",
    label=N_("Points"),
    help=N_("Your points and history: “points” or /points"),
    summary=N_("Your points and recent history"),
    phrases={
        "zh_CN": ("我的积分", "查积分", "积分查询", "查询积分", "积分余额"),
        "zh_TW": ("我的積分", "查積分", "積分查詢", "查詢積分", "積分餘額"),
        "en": ("my points", "balance", "my balance", "points balance"),
    },
)
async def points(msg: Inbound, ctx: Context) -> Reply:
    """Expire what is due first, so the balance shown is the balance that can be spent."""
    services, t, me = ctx.services, ctx.t, ctx.me
    now = services.clock.now()
    window = services.rules.points.reminder_days
    async with services.db.transaction() as session:
        await ledger.expire_due(session, me.id, now)
        balance = await ledger.balance_of(session, me.id)
        expiring = await ledger.expiring_within(session, me.id, now, window)
        entries = await ledger.recent(session, me.id, 10)
    lines = [t(N_("Your points: {balance}"), balance=balance)]
    if expiring:
        lines.append(
            t(N_("{points} points expire within {days} days."), points=expiring, days=window)
        )
    if entries:
        lines.append(t(N_("Recent:")))
        lines.extend(entry_line(t, e, ctx) for e in entries)
    else:
        lines.append(t(N_("No points yet. Check in every day to earn some!")))
    return Reply("\n".join(lines), private=True)
