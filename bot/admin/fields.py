"""Checks of the values operators and the shop send: each returns the clean value or raises
`Invalid` naming the field, so every door accepts and refuses alike."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal

from bot.admin.errors import Invalid, NotFound
from bot.core.messages import clean_text

CHANNELS = ("wechat", "telegram", "console")
SLUG = re.compile(r"[a-z0-9_-]{2,32}")
EXTERNAL_ID_MAX = 128
# Digits, at most one point: no sign, exponent, blank, underscore or non-ASCII digit.
PLAIN_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# The database's BIGINT, for whole numbers that name a row.
BIGINT_MAX = 2**63 - 1


def plain_text(value: str) -> bool:
    """No control characters or lone surrogates: no app sends them in ids, and the database
    drivers refuse them (NUL on PostgreSQL, surrogates on both)."""
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def one_line(raw: str) -> str:
    """Control characters dropped and any run of whitespace (newlines too) made one space."""
    return " ".join(clean_text(raw, len(raw) + 1).split())


def slug(raw: object, field: str = "slug") -> str:
    if not isinstance(raw, str) or not SLUG.fullmatch(raw):
        raise Invalid(field, f"{field} must be 2 to 32 characters of a-z, 0-9, - and _")
    return raw


def channel(raw: object) -> str:
    if raw not in CHANNELS:
        raise Invalid("channel", f"channel must be one of {', '.join(CHANNELS)}")
    return str(raw)


def external_id(raw: object) -> str:
    """A member's id in an app (openid, Telegram user id, console name)."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= EXTERNAL_ID_MAX or not plain_text(raw):
        raise Invalid(
            "external_id",
            f"external_id must be text of 1 to {EXTERNAL_ID_MAX} characters, no control characters",
        )
    return raw


def account(channel_name: str, raw_id: str) -> tuple[str, str]:
    """(channel, external_id) named in a URL path: NotFound when no member can have them."""
    if channel_name not in CHANNELS:
        raise NotFound(f"unknown channel: use {', '.join(CHANNELS[:-1])} or {CHANNELS[-1]}")
    if not 1 <= len(raw_id) <= EXTERNAL_ID_MAX or not plain_text(raw_id):
        raise NotFound("unknown member")
    return channel_name, raw_id


def text(field: str, raw: object, limit: int, *, single_line: bool = True) -> str:
    """Text of at most `limit` characters once control characters are dropped."""
    if not isinstance(raw, str):
        raise Invalid(field, f"{field} must be text of at most {limit} characters")
    cleaned = one_line(raw) if single_line else clean_text(raw, len(raw) + 1)
    if len(cleaned) > limit:
        raise Invalid(field, f"{field} must be text of at most {limit} characters")
    return cleaned


def key_text(field: str, raw: object, limit: int) -> str:
    """An identifier chosen by the caller (an order id, an idempotency key): kept as given."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= limit or not plain_text(raw):
        raise Invalid(field, f"{field} must be text of 1 to {limit} characters")
    return raw


def whole_number(field: str, raw: object, low: int, high: int) -> int:
    """A JSON integer (not a bool, a float or a string) within [low, high]."""
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise Invalid(field, f"{field} must be a whole number from {low} to {high}")
    return raw


def query_number(field: str, raw: str, low: int, high: int) -> int:
    """A whole number given as text (a query parameter)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise Invalid(field, f"{field} must be a whole number from {low} to {high}")
    return whole_number(field, int(raw), low, high)


def money(field: str, raw: object, maximum: int) -> Decimal:
    """A positive amount as a plain decimal string with at most two decimals, e.g. "99.50"."""
    example = f'{field} must be a decimal string such as "99.50"'
    if not isinstance(raw, str) or len(raw) > 32:
        raise Invalid(field, example)
    parts = PLAIN_DECIMAL.fullmatch(raw)
    if parts is None:
        raise Invalid(field, example)
    if parts.group(2) is not None and len(parts.group(2)) > 2:
        raise Invalid(field, f"{field} has more than two decimal places")
    amount = Decimal(raw)
    if amount <= 0:
        raise Invalid(field, f"{field} must be a positive number")
    if amount > maximum:
        raise Invalid(field, f"{field} must not exceed {maximum}")
    return amount


def choice(field: str, raw: object, allowed: Sequence[str]) -> str:
    if raw not in allowed:
        raise Invalid(field, f"{field} must be one of {', '.join(allowed)}")
    return str(raw)


def no_unknown(data: Mapping[str, object], known: Sequence[str], what: str) -> None:
    """Refuse a field the caller may have misspelt rather than ignore it."""
    unknown = [k for k in data if k not in known]
    if unknown:
        raise Invalid(unknown[0], f"{unknown[0][:40]} is not a {what} field")
