"""The SPEC's actions that this release does not have yet: they say so instead of failing.

Each moves to its own feature module (with its words) when it is built: delete its entry here
(an entry left behind does no harm: the built action and its words win over a placeholder).
None has a label, help line or command summary: menus and help show only what works.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.help import with_help

router = Router("coming-soon")
log = logging.getLogger("memberbot.coming_soon")

NOT_BUILT: dict[str, dict[str, Any]] = {
    "claim": {"keywords": {"zh_CN": ("抢",), "zh_TW": ("搶",), "en": ("claim",)}},
    "flashsale": {
        "keywords": {"zh_CN": ("发布抢购",), "zh_TW": ("發佈搶購",), "en": ("flashsale",)}
    },
    "rewards": {
        "keywords": {"zh_CN": ("积分商城",), "zh_TW": ("積分商城",), "en": ("rewards",)},
        "menu": "REWARDS",
        "phrases": {"zh_CN": ("积分兑换",), "zh_TW": ("積分兌換",), "en": ("points mall",)},
    },
    "redeem": {"keywords": {"zh_CN": ("兑换",), "zh_TW": ("兌換",), "en": ("redeem",)}},
    "vouchers": {"keywords": {"zh_CN": ("我的券",), "zh_TW": ("我的券",), "en": ("vouchers",)}},
    "makeup": {"keywords": {"zh_CN": ("补签",), "zh_TW": ("補簽",), "en": ("makeup",)}},
    "badges": {"keywords": {"zh_CN": ("勋章",), "zh_TW": ("勳章",), "en": ("badges",)}},
    "top": {"keywords": {"zh_CN": ("排行榜",), "zh_TW": ("排行榜",), "en": ("top",)}},
    "complain": {
        "keywords": {"zh_CN": ("投诉",), "zh_TW": ("投訴",), "en": ("complain",)},
        "menu": "COMPLAIN",
    },
    "tickets": {"keywords": {"zh_CN": ("我的投诉",), "zh_TW": ("我的投訴",), "en": ("tickets",)}},
    "ticket": {},
    "rate": {"keywords": {"zh_CN": ("评分",), "zh_TW": ("評分",), "en": ("rate",)}},
    "tasks": {"keywords": {"zh_CN": ("任务",), "zh_TW": ("任務",), "en": ("tasks",)}},
    "draw": {"keywords": {"zh_CN": ("抽奖",), "zh_TW": ("抽獎",), "en": ("draw",)}},
    # Support staff's commands (complaints).
    "take": {},
    "reply": {},
    "wait": {},
    "resolve": {},
    "assign": {},
    "open": {},
}


async def coming_soon(msg: Inbound, ctx: Context) -> Reply:
    """Features of the SPEC not built yet: said so, with what the member wrote, and the help.

    What they wrote is logged, so the shop can see what members asked for meanwhile."""
    written = msg.text.strip()
    log.info("coming soon action=%s member=%s text=%r", ctx.action, ctx.me.id, written[:500])
    first = ctx.t(N_("This feature is coming soon."))
    if written and msg.args:
        first += "\n" + ctx.t(N_("I noted what you wrote: “{text}”"), text=written[:200])
    return with_help(ctx, first)


for _name, _words in NOT_BUILT.items():
    router.action(_name, commands=(_name,), placeholder=True, **_words)(coming_soon)
