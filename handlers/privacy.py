"""Privacy as the member sees it: the full notice (/privacy; its one line at first contact is
bot/core/first_contact.py), what is kept (/mydata), and erasing it (/forgetme, after
confirmation)."""

from __future__ import annotations

from bot.core.context import Context, Services
from bot.core.dialogs import Dialogs
from bot.core.i18n import N_
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from handlers import ticket_media
from storage import privacy

router = Router("privacy")

FULL_NOTICE = N_(
    "Privacy notice\n"
    "What we keep: your account id in each app you write from, the name the app shows us, "
    "your language, your birthday if you give it, your points, growth and tier with their "
    "history (check-ins, orders the shop reports, invites, communities you join), and the "
    "messages we send you.\n"
    "Why: to run your membership (points, tiers, rewards, reminders) and nothing else; we do "
    "not sell or share it.\n"
    "Your choices: /mydata shows what we keep; /mute stops promotions; /forgetme erases your "
    "personal data (your points history stays, anonymous, in the shop's accounts)."
)
ASK = N_(
    "This erases your name, birthday, language and linked app accounts, and the texts we sent "
    "you. Your points history stays only as anonymous numbers, and you cannot get it back. "
    "To go ahead, reply 确认 / 確認 / yes, or press the button."
)
CONFIRM = N_("Yes, erase my data")
DONE = N_(
    "Done: your personal data is erased. If you write again you start as a new member. "
    "Goodbye, and thank you!"
)
KEPT = N_("Nothing was erased: your data is as it was.")
YES = frozenset({"确认", "確認", "yes", "y", "confirm"})


@router.action(
    "privacy",
    commands=("privacy",),
    keywords={"zh_CN": ("隐私",), "zh_TW": ("隱私",), "en": ("privacy",)},
    help=N_("Privacy: /privacy, /mydata, /forgetme"),
    summary=N_("What we keep about you, and why"),
)
async def show_notice(msg: Inbound, ctx: Context) -> Reply:
    """The full notice: the rules file's, in the member's language, else the built-in one."""
    custom = ctx.services.rules.privacy.notice.get(ctx.locale)  # type: ignore[call-overload]
    return Reply(custom or ctx.t(FULL_NOTICE))


@router.action(
    "mydata",
    commands=("mydata",),
    keywords={"zh_CN": ("我的数据",), "zh_TW": ("我的資料",), "en": ("mydata",)},
    summary=N_("See what we keep about you"),
)
async def my_data(msg: Inbound, ctx: Context) -> Reply:
    """What is kept, in words, with the numbers of each kind of record."""
    t, me = ctx.t, ctx.me
    async with ctx.services.db.reader() as session:
        counts = await privacy.kept(session, me.id)
        accounts = await privacy.accounts(session, me.id)
    unset = t(N_("not given"))
    lines = [
        t(N_("What we keep about you:")),
        t(N_("• Accounts: {accounts}"), accounts=", ".join(accounts)),
        t(N_("• Name shown by your app: {name}"), name=me.display_name or unset),
        t(N_("• Birthday: {birthday}"), birthday=me.birthday or unset),
        t(N_("• Language: {language}"), language=me.locale or unset),
        t(
            N_("• Points {points}, growth {growth}, tier {tier}"),
            points=me.points,
            growth=me.growth,
            tier=me.tier,
        ),
        t(
            N_(
                "• Records: {ledger} points movements, {checkins} check-ins, {orders} orders, "
                "{communities} communities, {invited} members you invited, {pushes} messages "
                "we sent you"
            ),
            **counts,
        ),
        t(N_("• Promotions: {state}"), state=t(N_("off")) if me.muted_at else t(N_("on"))),
        t(N_("Send /forgetme to erase your personal data.")),
    ]
    return Reply("\n".join(lines), private=True)


@router.action(
    "forgetme",
    commands=("forgetme",),
    keywords={"zh_CN": ("注销",), "zh_TW": ("註銷",), "en": ("forgetme",)},
    menu="FORGETME",
    summary=N_("Erase your personal data"),
)
async def forget_me(msg: Inbound, ctx: Context) -> Reply:
    """Asks first; the confirmation (a button, or 确认 / 確認 / yes) erases."""
    dialogs = Dialogs(ctx.services.cache)
    answer = msg.args.strip().lower()
    if not answer:
        await dialogs.ask(ctx.me.id, "forgetme")  # the next plain message answers
        return Reply(ctx.t(ASK), buttons=(Button(ctx.t(CONFIRM), "FORGETME:yes"),), private=True)
    await dialogs.done(ctx.me.id)
    if answer not in YES:
        return Reply(ctx.t(KEPT))
    # Rendered before erasing: the member's language is part of what goes.
    done = ctx.t(DONE)
    await forget(ctx.services, ctx.me.id)
    return Reply(done, private=True)


async def forget(services: Services, member_id: int) -> list[int]:
    """Erase the member's personal data (numbers kept, anonymous); the erased member ids.

    What the cache keeps about them (an open question, numbered options, a QR code, the
    WeChat reply window) goes too; the rest of it expires within minutes. The photos kept
    with their complaints are deleted."""
    async with services.db.reader() as session:
        accounts = await privacy.account_pairs(session, member_id)
    async with services.db.transaction() as session:
        photos = await privacy.ticket_photos(session, member_id)
        erased = await privacy.erase(session, member_id, services.clock.now())
    # After the commit: a rolled-back erasure keeps its photos.
    await ticket_media.drop_photos(services, photos)
    cache, keys = services.cache, services.cache.keys
    for one in erased:
        for key in (keys.dialog, keys.wechat_invite_qr, keys.link_attempts, keys.invite_attempts):
            await cache.delete(key(one))
    for channel, external_id in accounts:
        await cache.delete(keys.options(channel, external_id))
        if channel == "wechat":
            await cache.delete(keys.wechat_window(external_id))
    return erased
