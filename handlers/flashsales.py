"""Flash sales in chat: members claim (button, /claim CODE, 抢 CODE, the deep link), moderators
post (`/flashsale` one line, or step by step: flashsale_dialog.py); the every-minute hook
starts and ends sales.

The rules are in handlers/flashsale_engine.py (claims) and flashsale_posts.py (start, end).
"""

from __future__ import annotations

from bot.admin.errors import Invalid
from bot.core.context import Context, Services
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.flashsale_dialog import begin
from handlers.flashsale_engine import LIMIT_REFUSAL, Door, claim_sale, codes_held
from handlers.flashsale_form import allowed_community, create, one_line, refusal
from handlers.flashsale_posts import run_due

router = Router("flashsales")

LINK_PREFIX = "fs_"  # Telegram deep link ?start=fs_<code>: claims on arrival

USAGE = N_(
    "Post a flash sale in one line:\n"
    "/flashsale SLUG | TITLE | PRICE | STOCK | LIMIT | START | MINUTES [| TIER]\n"
    "START is now, HH:MM or YYYY-MM-DD HH:MM. Example:\n"
    "/flashsale coffee | Geisha beans 200g | 99.50 | 20 | 1 | now | 30"
)


@router.action(
    "claim",
    commands=("claim",),
    keywords={"zh_CN": ("抢",), "zh_TW": ("搶",), "en": ("claim",)},
    menu="FS",  # the announcement's button: "fs:<code>"
    help=N_("Claim a flash sale: “claim CODE” or /claim CODE"),
)
async def claim(msg: Inbound, ctx: Context) -> Reply:
    code = msg.args.strip()
    if not code:
        raise DomainError(N_("Which sale? Send “claim CODE” with the code of the flash sale."))
    return await _claimed(msg, ctx, code)


async def _claimed(msg: Inbound, ctx: Context, code: str) -> Reply:
    """The claim's answer; a refusal too is private, and is the button's toast. In a group
    the toast is the whole answer (the code follows privately by push); a member at the limit
    is sent to the private chat, where the deep link shows the codes they hold."""
    key = f"{msg.channel}:{msg.message_id}" if msg.message_id else None
    door = Door((msg.channel, msg.external_id) if msg.is_group else None, key)
    try:
        return await claim_sale(ctx.services, ctx.me, code, ctx.t, door)
    except DomainError as refused:
        text = ctx.t(refused.message, **refused.params)
        at_limit = msg.is_group and refused.message == LIMIT_REFUSAL
        return Reply(text, private=True, toast=text, open_private=at_limit)


async def claim_from_link(msg: Inbound, ctx: Context) -> Reply | None:
    """`/start fs_<code>`: the member was sent to the private chat to claim: the codes they
    won already (the button claimed, the DM could not tell them), else a claim; None when
    the link is no flash-sale link."""
    payload = (msg.referral or "").strip()
    if not payload.lower().startswith(LINK_PREFIX):
        return None
    code = payload[len(LINK_PREFIX) :]
    held = await codes_held(ctx.services, ctx.me, code, ctx.t)
    return held if held is not None else await _claimed(msg, ctx, code)


@router.action(
    "flashsale",
    commands=("flashsale",),
    keywords={"zh_CN": ("发布抢购",), "zh_TW": ("發佈搶購",), "en": ("flashsale",)},
)
async def post_sale(msg: Inbound, ctx: Context) -> Reply:
    """A moderator of the community (or staff, an admin) posts a sale: in one line, or
    step by step when the line is empty."""
    if not msg.args.strip():
        return await begin(ctx)
    parts = [p.strip() for p in msg.args.split("|")]
    if len(parts) not in (7, 8):
        return Reply(ctx.t(USAGE), private=True)
    community = await allowed_community(ctx, parts[0])
    try:
        data = one_line(ctx.services, community.slug, parts)
    except Invalid as bad:
        raise refusal(ctx.services, bad) from None
    return await create(ctx, data)


async def hook(services: Services) -> int:
    """Every minute: start the sales whose time came, end those past their end or sold out."""
    return await run_due(services)
