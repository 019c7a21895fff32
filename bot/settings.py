"""Typed settings: process environment (prefix MEMBERBOT_) plus the TOML rules file."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Locale = Literal["zh_CN", "zh_TW", "en"]
LOCALES: tuple[Locale, ...] = ("zh_CN", "zh_TW", "en")


class ConfigError(Exception):
    """Settings or rules that cannot be used; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRule(_Strict):
    name: str
    threshold: int = Field(ge=0)
    multiplier: float = Field(gt=0, le=10)
    benefits: tuple[str, ...] = ()
    first_response_hours: float | None = Field(default=None, gt=0, le=720)  # complaints
    # What the shop's till takes off for this tier (0.98: 2 % off); shown on /tier and in the
    # member JSON as `discount`. None: no discount.
    discount: float | None = Field(default=None, gt=0, le=1)
    flash_sale_early_minutes: int = Field(default=0, ge=0, le=10080)  # claim this long early


DEFAULT_TIERS = (
    TierRule(
        name="bronze", threshold=0, multiplier=1.0, benefits=("checkin_points", "birthday_double")
    ),
    TierRule(
        name="silver",
        threshold=500,
        multiplier=1.2,
        benefits=("checkin_points", "birthday_double", "points_x1_2", "member_communities"),
    ),
    TierRule(
        name="gold",
        threshold=2000,
        multiplier=1.5,
        benefits=(
            "checkin_points",
            "birthday_double",
            "points_x1_5",
            "member_communities",
            "early_flash_sales",
        ),
        flash_sale_early_minutes=10,
    ),
    TierRule(
        name="diamond",
        threshold=10000,
        multiplier=2.0,
        benefits=(
            "checkin_points",
            "birthday_double",
            "points_x2",
            "member_communities",
            "early_flash_sales",
            "priority_support",
        ),
        flash_sale_early_minutes=30,
    ),
)


class CheckinRules(_Strict):
    streak_rewards: tuple[int, ...] = (5, 5, 10, 10, 15, 15, 30)
    birthday_multiplier: int = Field(default=2, ge=1)
    growth: int = Field(default=1, ge=0)

    @field_validator("streak_rewards")
    @classmethod
    def _non_empty(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(x < 0 for x in v):
            raise ValueError("needs at least one reward, none negative")
        return v


class PointsRules(_Strict):
    expiry_days: int = Field(default=365, ge=1)
    reminder_days: int = Field(default=30, ge=0)
    per_currency_unit: int = Field(default=1, ge=0)
    max_adjustment: int = Field(default=1_000_000, ge=1)


class GrowthRules(_Strict):
    per_currency_unit: int = Field(default=1, ge=0)
    per_invite: int = Field(default=50, ge=0)


class InviteRules(_Strict):
    invitee_points: int = Field(default=20, ge=0)
    inviter_points: int = Field(default=50, ge=0)
    daily_review_threshold: int = Field(default=20, ge=0)
    attribution_days: int = Field(default=7, ge=0)
    wrong_code_limit: int = Field(default=5, ge=1)  # codes a member may type (any)...
    wrong_code_minutes: int = Field(default=60, ge=1)  # ...within this many minutes
    # When the inviter is paid: at the invitee's first check-in, or first paid order.
    reward_on: Literal["first_checkin", "first_order"] = "first_checkin"


class LimitRules(_Strict):
    flood_per_minute: int = Field(default=20, ge=1)
    link_code_minutes: int = Field(default=10, ge=1)
    link_attempts: int = Field(default=5, ge=1)
    max_order_amount: int = Field(default=10_000_000, ge=1, le=999_999_999_999)
    text_length: int = Field(default=2000, ge=16)
    # No balance or growth beyond this: orders and adjustments past it are refused (422).
    max_balance: int = Field(default=10**15, ge=1, le=2**62)


class OrderRules(_Strict):
    currencies: tuple[str, ...] = ("CNY",)  # what POST /api/orders accepts; others are 422

    @field_validator("currencies")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or any(
            not (c.isascii() and c.isalpha() and c.isupper() and len(c) == 3) for c in v
        ):
            raise ValueError("needs at least one ISO 4217 code such as CNY")
        return v


def _clock_time(value: str) -> str:
    """Check an "HH:MM" wall-clock time (00:00 to 23:59)."""
    hours, sep, minutes = value.partition(":")
    ok = sep and hours.isdecimal() and minutes.isdecimal() and len(minutes) == 2
    if not ok or int(hours) > 23 or int(minutes) > 59:
        raise ValueError("must be a time HH:MM")
    return f"{int(hours):02d}:{minutes}"


class NudgeRules(_Strict):
    """Pushes the bot makes on its own initiative: when, and how often at most."""

    quiet_start: str = "22:00"  # nudges and campaigns wait from here (local time)...
    quiet_end: str = "08:00"  # ...to here; equal times: no quiet hours
    daily_hour: int = Field(default=9, ge=0, le=23)  # local hour the daily jobs start
    reminder_gap_days: int = Field(default=7, ge=1)  # at most one expiry reminder per this
    dormant_days: int = Field(default=30, ge=1)  # no check-in nor purchase for this long...
    dormant_every_days: int = Field(default=30, ge=1)  # ...nudged at most once per this
    tier_review_days: int = Field(default=365, ge=1)  # a member's tier is reviewed this often

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _hh_mm(cls, v: str) -> str:
        return _clock_time(v)


class OutboxRules(_Strict):
    """How the outbox sends: retries, WeChat holds, parallelism, health."""

    max_attempts: int = Field(default=8, ge=1)  # then the push fails with the last reason
    backoff_seconds: float = Field(default=30, gt=0)  # first retry after about this long...
    backoff_cap_seconds: float = Field(default=3600, gt=0)  # ...doubling up to this
    hold_days: float = Field(default=7, gt=0)  # a push waiting for a WeChat follower to write
    degraded_after_seconds: int = Field(default=600, ge=1)  # /healthz: oldest due push's age
    concurrency: int = Field(default=8, ge=1)  # chats sent to at once, per process, but WeChat
    wechat_concurrency: int = Field(default=64, ge=1)  # WeChat's own: it has no 30/s-wide cap
    batch: int = Field(default=100, ge=1)  # pushes claimed at a time
    lease_seconds: int = Field(default=120, ge=5)  # a claimed push returns if not marked by then
    poll_seconds: float = Field(default=5, gt=0)  # look for due pushes at least this often
    shutdown_seconds: float = Field(default=10, gt=0)  # sends in flight get this long at exit

    def slots(self, channel: str) -> tuple[str, int]:
        """The pool of send slots a push of `channel` takes one of, and its size: WeChat's own
        (nothing caps its sends across followers), the other apps share `concurrency`."""
        if channel == "wechat":
            return "wechat", self.wechat_concurrency
        return "", self.concurrency


class PrivacyRules(_Strict):
    # The full notice /privacy shows, per language; a language not given gets the built-in one.
    notice: dict[Locale, str] = Field(default_factory=dict)


class WeChatRules(_Strict):
    """WeChat: how far its signed requests are trusted; template ids for service notices."""

    # A signature's timestamp may be this far from now, either way; older ones are replays.
    signature_window_seconds: int = Field(default=300, ge=10, le=86_400)
    # `[wechat.templates]`: push kind → template id. A push of a listed kind goes out as a
    # template message (not bound to the follower's 48-hour window); others as before.
    templates: dict[str, str] = Field(default_factory=dict)

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: dict[str, str]) -> dict[str, str]:
        for kind, template_id in v.items():
            if not re.fullmatch(r"[a-z0-9-]{1,32}", kind):
                raise ValueError(f"templates: {kind[:40]!r} is not a push kind")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", template_id):
                raise ValueError(f"templates: {kind}: template id must be 1-64 of A-Z a-z 0-9 _ -")
        return v


class ComplaintRules(_Strict):
    """The complaints desk: the first-response promise, warnings, reopening, canned replies."""

    first_response_hours: float = Field(default=24, gt=0, le=720)  # a tier may set fewer
    warn_at: float = Field(default=0.8, gt=0, lt=1)  # share of the time gone: warn the handler
    reopen_days: int = Field(default=7, ge=0)  # a resolved ticket reopens, then it closes
    breach_points: int = Field(default=0, ge=0, le=100_000)  # apology credit at a breach
    canned: dict[str, str] = Field(default_factory=dict)  # "/reply NO #key" sends the text
    business_hours: str = ""  # "09:00-18:00" local time: the clock runs only then; "": always
    business_days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)  # ISO weekdays the clock runs
    photo_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=20 * 1024 * 1024)

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if not v:
            return v
        opens, sep, closes = v.partition("-")
        if not sep or _clock_time(opens.strip()) >= _clock_time(closes.strip()):
            raise ValueError('must be "HH:MM-HH:MM", opening before closing')
        return f"{_clock_time(opens.strip())}-{_clock_time(closes.strip())}"

    @field_validator("business_days")
    @classmethod
    def _days(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("ISO weekdays 1 (Monday) to 7 (Sunday), at least one")
        return v

    @field_validator("canned")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        if any(not k or len(k) > 32 or not t.strip() for k, t in v.items()):
            raise ValueError("keys of 1-32 characters, each with a text")
        return v


class EarningRule(_Strict):
    """What one deed the shop reports (POST /api/events) is worth; `daily_cap`: how many of
    its type a member is credited per local day (None: no cap)."""

    points: int = Field(default=0, ge=0, le=1_000_000)
    growth: int = Field(default=0, ge=0, le=1_000_000)
    daily_cap: int | None = Field(default=None, ge=0)


DEFAULT_EARNING = {
    "review": EarningRule(points=10, growth=5, daily_cap=3),
    "share": EarningRule(points=5, daily_cap=3),
}


class TaskRules(_Strict):
    """Points for each one-off task of /tasks, paid once (0: listed, not paid)."""

    birthday: int = Field(default=20, ge=0)
    community: int = Field(default=20, ge=0)
    link: int = Field(default=30, ge=0)
    first_order: int = Field(default=50, ge=0)


class RewardRules(_Strict):
    """[rewards]: make-up check-ins and the monthly member day."""

    makeup_cost: int = Field(default=20, ge=1)  # points a make-up check-in costs
    makeup_days: int = Field(default=3, ge=1)  # how far back a missed day may be filled
    makeup_per_month: int = Field(default=2, ge=0)  # make-ups a member may buy per month
    member_day: int = Field(default=18, ge=0, le=31)  # day of the month; 0: none
    member_day_multiplier: int = Field(default=2, ge=1)  # check-in points that day
    member_day_orders: bool = False  # order points are multiplied that day too

    def is_member_day(self, day: date) -> bool:
        return self.member_day == day.day


class GiftRules(_Strict):
    """Vouchers given, not bought: tier name -> reward slug (a tier not named gets none)."""

    welcome: dict[str, str] = Field(default_factory=dict)  # once, when the member joins
    birthday: dict[str, str] = Field(default_factory=dict)  # on the birthday, once a year
    welcome_hours: int = Field(default=24, ge=1)  # members who joined this recently get it


class FlashSaleRules(_Strict):
    """Who may claim flash sales."""

    min_member_days: int = Field(default=0, ge=0, le=3650)  # members younger cannot claim


class Rules(_Strict):
    """Product rules; every field has the SPEC default so an absent rules file is fine."""

    tiers: tuple[TierRule, ...] = DEFAULT_TIERS
    checkin: CheckinRules = CheckinRules()
    points: PointsRules = PointsRules()
    growth: GrowthRules = GrowthRules()
    invites: InviteRules = InviteRules()
    limits: LimitRules = LimitRules()
    orders: OrderRules = OrderRules()
    nudges: NudgeRules = NudgeRules()
    outbox: OutboxRules = OutboxRules()
    privacy: PrivacyRules = PrivacyRules()
    complaints: ComplaintRules = ComplaintRules()
    earning: dict[str, EarningRule] = Field(default_factory=lambda: dict(DEFAULT_EARNING))
    tasks: TaskRules = TaskRules()
    rewards: RewardRules = RewardRules()
    gifts: GiftRules = GiftRules()
    flash_sales: FlashSaleRules = FlashSaleRules()
    wechat: WeChatRules = WeChatRules()

    @field_validator("earning")
    @classmethod
    def _earning_types(cls, v: dict[str, EarningRule]) -> dict[str, EarningRule]:
        for kind in v:
            if not 1 <= len(kind) <= 32 or not kind.replace("_", "").isalnum():
                raise ValueError(f"earning: type {kind[:40]!r} must be 1-32 letters, digits, _")
        return v

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Rules:
        if not self.tiers or self.tiers[0].threshold != 0:
            raise ValueError("tiers: the first tier must have threshold 0")
        thresholds = [t.threshold for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers: thresholds must be strictly increasing")
        return self

    def tier(self, name: str) -> TierRule:
        for t in self.tiers:
            if t.name == name:
                return t
        return self.tiers[0]

    def tier_for_growth(self, growth: int) -> TierRule:
        held = self.tiers[0]
        for t in self.tiers:
            if growth >= t.threshold:
                held = t
        return held

    def tier_rank(self, name: str) -> int:
        return next((i for i, t in enumerate(self.tiers) if t.name == name), 0)

    def first_response_hours(self, tier: str) -> float:
        """The complaint deadline a member of `tier` is promised."""
        own = self.tier(tier).first_response_hours
        return own if own is not None else self.complaints.first_response_hours

    def next_tier(self, name: str) -> TierRule | None:
        rank = self.tier_rank(name)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None


def load_rules(path: Path | None) -> Rules:
    """Read the rules file; a missing default file means defaults, a bad one names the key."""
    if path is None:
        return Rules()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"rules file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file {path} is not valid TOML: {exc}") from exc
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"rules file {path}: {key}: {err['msg']}") from exc


class Settings(BaseSettings):
    """Process settings from the environment (prefix MEMBERBOT_)."""

    model_config = SettingsConfigDict(env_prefix="MEMBERBOT_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./memberbot.db"
    redis_url: str | None = None
    # Every Redis key and the worker queue start with it: deployments can share one Redis.
    redis_prefix: str = Field(
        default="mb", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$"
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    timezone: str = "Asia/Shanghai"
    default_locale: Locale = "zh_CN"
    admin_token: str | None = None
    shop_secret: str | None = None
    telegram_token: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_staff_chat_id: str | None = None
    wechat_token: str | None = None
    wechat_appid: str | None = None
    wechat_secret: str | None = None
    wechat_aes_key: str | None = None
    # plain, compatible or safe, as set in the Official Account console; None: compatible
    # with an AES key, else plain (see wechat_mode_in_use).
    wechat_mode: Literal["plain", "compatible", "safe"] | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    rules_file: Path | None = None
    media_dir: Path = Path("media")  # photos members send with complaints, under complaints/

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator(
        "redis_url",
        "admin_token",
        "shop_secret",
        "telegram_token",
        "wechat_token",
        "wechat_mode",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v

    @property
    def wechat_mode_in_use(self) -> str:
        if self.wechat_mode is not None:
            return self.wechat_mode
        return "compatible" if self.wechat_aes_key else "plain"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def rules_path(self) -> Path | None:
        if self.rules_file is not None:
            return self.rules_file
        default = Path("memberbot.toml")
        return default if default.exists() else None


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "MEMBERBOT_" + ".".join(str(p) for p in err["loc"]).upper()
        raise ConfigError(f"setting {key}: {err['msg']}") from exc
