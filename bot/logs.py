"""Personal data out of log lines: database errors quote the values they failed on.

The engines hide bound parameters (`hide_parameters=True`), but PostgreSQL's own DETAIL
line repeats the row's values ("Key (channel, external_id)=(wechat, o...) already exists",
"Failing row contains (...)"), in the message and in every chained exception of a traceback.
`Scrubbed` is a handler filter that rewrites such lines before any formatter sees them.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # PostgreSQL's DETAIL (and asyncpg's "DETAIL:  ..." suffix): keys and failing rows.
    (re.compile(r"DETAIL:[^\n]*"), "DETAIL: (values hidden)"),
    (re.compile(r"Key \([^)\n]*\)=\([^\n]*"), "Key (values hidden)"),
    (re.compile(r"Failing row contains \([^\n]*"), "Failing row contains (values hidden)"),
    # SQLAlchemy's parameter list, should an engine be made without hide_parameters.
    (re.compile(r"\[parameters: [^\n]*\]"), "[parameters hidden]"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class Scrubbed(logging.Filter):
    """Rewrite a record's message and traceback text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, Scrubbed) for f in handler.filters):
            handler.addFilter(Scrubbed())
