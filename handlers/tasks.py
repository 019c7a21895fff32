"""`/tasks`: today's check-in, the day's reviews and shares against their caps, and one-off
tasks (set a birthday, join a community, link the other app, first order), each paid once:
a task found done here is paid in this reply."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.clock import local_day
from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from storage import checkins, communities, earning, ledger, members
from storage.ledger import lock_member

router = Router("tasks")

DAILY_LABELS = {"review": N_("Write a review"), "share": N_("Share with friends")}
ONE_OFF = (
    ("birthday", N_("Set your birthday (/birthday MM-DD)")),
    ("community", N_("Join a community (/communities)")),
    ("link", N_("Link WeChat and Telegram (/link)")),
    ("first_order", N_("Place your first order")),
)
APPS = {"wechat", "telegram"}


@dataclass(frozen=True)
class OneOff:
    name: str
    label: str
    points: int
    done: bool
    paid_now: bool


@router.action(
    "tasks",
    commands=("tasks",),
    keywords={"zh_CN": ("任务",), "zh_TW": ("任務",), "en": ("tasks",)},
    help=N_("Tasks for points: “tasks”"),
    summary=N_("Tasks that earn points"),
)
async def show_tasks(msg: Inbound, ctx: Context) -> Reply:
    t, me, services = ctx.t, ctx.me, ctx.services
    rules = services.rules
    today = local_day(services.clock.now(), services.settings.tz)
    async with services.db.reader() as session:
        last = await checkins.last(session, me.id)
        counts = await earning.counts_on(session, me.id, today)
    tick = {True: "✅", False: "⬜"}
    lines = [t(N_("Today:"))]
    checked = last is not None and last.day == today
    lines.append(f"{tick[checked]} " + t(N_("Check in (/checkin)")))
    for kind, rule in rules.earning.items():
        label = t(DAILY_LABELS[kind]) if kind in DAILY_LABELS else kind
        done = counts.get(kind, 0)
        cap = rule.daily_cap
        full = cap is not None and done >= cap
        progress = f"{done}/{cap}" if cap is not None else str(done)
        reward = t(N_("+{points} points each"), points=rule.points)
        lines.append(f"{tick[full]} {label}: {progress} ({reward})")
    lines.append(t(N_("Once:")))
    paid_total = 0
    for task in await _one_offs(ctx):
        reward = t(N_("+{points} points"), points=task.points) if task.points else ""
        note = t(N_("just paid!")) if task.paid_now else reward
        lines.append(f"{tick[task.done]} {t(task.label)}" + (f" ({note})" if note else ""))
        paid_total += task.points if task.paid_now else 0
    if paid_total:
        lines.append(t(N_("You earned {points} points for tasks done."), points=paid_total))
    return Reply("\n".join(lines), private=True)


async def _one_offs(ctx: Context) -> list[OneOff]:
    """Each one-off task, whether done, and paid now if done and never paid before."""
    me, services = ctx.me, ctx.services
    rules, now = services.rules, services.clock.now()
    found: list[OneOff] = []
    async with services.db.transaction() as session:
        held = await lock_member(session, me.id)  # one payment per task however many ask
        accounts = await members.identities_of(session, me.id)
        done = {
            "birthday": held.birthday is not None,
            "community": bool(await communities.joined_ids(session, me.id)),
            "link": {a.channel for a in accounts} >= APPS,
            "first_order": await earning.has_paid_order(session, me.id),
        }
        for name, label in ONE_OFF:
            points = getattr(rules.tasks, name)
            pay = done[name] and points > 0 and not await earning.task_paid(session, me.id, name)
            if pay:
                await ledger.earn(
                    session,
                    me.id,
                    points,
                    f"task {name}",
                    f"task:{name}:{me.id}",
                    now,
                    expiry_days=rules.points.expiry_days,
                )
            found.append(OneOff(name, label, points, done[name], pay))
    return found
