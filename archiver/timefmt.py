"""Times as archiver writes them: ISO 8601 in UTC with a `Z`, one set of rules for items, reports and state."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")  # DW's old layout: dd.mm.yyyy


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`: whole seconds, milliseconds or microseconds as the value has them."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    micro = value.microsecond
    spec = "seconds" if not micro else "microseconds" if micro % 1000 else "milliseconds"
    return value.isoformat(timespec=spec).removesuffix("+00:00") + "Z"


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds."""
    now = datetime.now(UTC)
    return iso_utc(now.replace(microsecond=now.microsecond // 1000 * 1000)) or ""


def normalize_iso(value: object) -> str | None:
    """A date(-time) string from a page or API (ISO 8601, or dd.mm.yyyy) as `iso_utc` writes it; None if not a date."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        match = _DOTTED_DATE.fullmatch(raw)
        if not match:
            return None
        day, month, year = (int(g) for g in match.groups())
        try:
            parsed = datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return iso_utc(parsed.replace(microsecond=parsed.microsecond // 1000 * 1000))


def compact_utc(value: datetime) -> str:
    """`20261206T024600Z`: a UTC time for names of runs and files."""
    return f"{value.astimezone(UTC):%Y%m%dT%H%M%SZ}"
