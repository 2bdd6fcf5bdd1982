"""When an archived article is checked again: an interval that grows with the article's age, or one fixed interval.

Pure functions and dataclasses (no Scrapy, no SQLite): the state calls `RecheckPolicy.decide` where an article is
finished, the run plan orders overdue rechecks with `lateness`, and `scrapy schedule` explains the steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from archiver.run.changes import EDITED, REMOVED, RESTORED

MINUTE, HOUR, DAY, WEEK, YEAR = 60.0, 3600.0, 86400.0, 7 * 86400.0, 365 * 86400.0

# The changes the schedule remembers (archiver.run.changes names them): edits and restorations come in bursts, so
# they bring the article back to the shortest interval for a while; a removal keeps its schedule.
SCHEDULED_KINDS = (EDITED, RESTORED, REMOVED)
BURST_KINDS = frozenset({EDITED, RESTORED})

OLDER = "*"  # the age of the last step: every older article
DEFAULT_SCHEDULE = ("1d:1h", "7d:6h", "30d:1d", "365d:7d", "*:90d")
DEFAULT_BUDGET = 2000

_UNITS = {"s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, "y": YEAR}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*", re.IGNORECASE)


def parse_duration(text: str | float) -> float:
    """Seconds of `90`, `90s`, `15m`, `6h`, `1d`, `2w` or `1y` (365 days); a number is seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.fullmatch(str(text))
        if match is None:
            raise ValueError(f"not a duration: {text!r} (a number with s, m, h, d, w or y, e.g. 6h)")
        seconds = float(match[1]) * _UNITS[match[2].lower() or "s"]
    if seconds < 0:
        raise ValueError(f"not a duration: {text!r} (negative)")
    return seconds


def format_duration(seconds: float) -> str:
    """The largest whole unit of a duration (`6h`, `90d`, `1w`), else seconds."""
    for unit in ("y", "w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_span(seconds: float) -> str:
    """A span for people, in its two largest units: `2d 3h`, `3h 25m`, `45s`."""
    left, parts = round(seconds), []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


@dataclass(frozen=True, slots=True)
class Step:
    """Articles younger than `age` seconds (the last step: any age) are checked every `interval` seconds."""

    age: float
    interval: float

    def __str__(self) -> str:
        age = OLDER if self.age == float("inf") else format_duration(self.age)
        return f"{age}:{format_duration(self.interval)}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What finishing an article decided: its next check, the interval that gave it, and its age step."""

    next_check: float
    interval: float
    tier: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """Age steps, youngest first; the last one holds every older article."""

    steps: tuple[Step, ...]

    @classmethod
    def parse(
        cls, value: str | Iterable[str | Sequence[str | float]], name: str = "ARCHIVER_RECHECK_SCHEDULE"
    ) -> Schedule:
        """From `age:interval` steps (a list, or one comma-separated string), ages increasing, the last `*:...`."""
        items = [s for s in value.split(",") if s.strip()] if isinstance(value, str) else list(value)
        steps: list[Step] = []
        for item in items:
            pair = item.split(":") if isinstance(item, str) else list(item)
            if len(pair) != 2:
                raise ValueError(f"{name}: bad step {item!r}: write age:interval, e.g. 7d:6h")
            age, interval = pair
            try:
                older = isinstance(age, str) and age.strip() == OLDER
                step = Step(float("inf") if older else parse_duration(age), parse_duration(interval))
            except ValueError as exc:
                raise ValueError(f"{name}: bad step {item!r}: {exc}") from None
            if step.interval <= 0:
                raise ValueError(f"{name}: bad step {item!r}: the interval must be more than 0")
            if steps and step.age <= steps[-1].age:
                raise ValueError(f"{name}: bad step {item!r}: ages must increase from step to step")
            steps.append(step)
        if not steps or steps[-1].age != float("inf"):
            raise ValueError(f"{name}: the last step must be {OLDER}:interval (every older article)")
        return cls(tuple(steps))

    def __str__(self) -> str:
        return ",".join(str(s) for s in self.steps)

    @property
    def shortest(self) -> float:
        """The shortest interval of any step."""
        return min(s.interval for s in self.steps)

    @property
    def burst(self) -> float:
        """How long after an edit or restoration the article is checked at the shortest interval: the first step's
        age (an edited article is treated as a fresh one that long)."""
        return self.steps[0].age if len(self.steps) > 1 else self.steps[0].interval

    def tier(self, age: float) -> int:
        """The index of the step an article of this age is in."""
        for i, step in enumerate(self.steps):
            if age < step.age:
                return i
        return len(self.steps) - 1


DEFAULT = Schedule.parse(DEFAULT_SCHEDULE)


@dataclass(frozen=True, slots=True)
class RecheckPolicy:
    """The schedule, or one fixed interval for every article (`ARCHIVER_RECHECK_AFTER`, when set)."""

    schedule: Schedule = DEFAULT
    fixed: float | None = None

    def decide(
        self,
        published: float | None,
        first_capture: float | None,
        now: float,
        change_kind: str | None = None,
        last_change_at: float | None = None,
    ) -> Decision:
        """The next check of an article finished at `now` (age from publication, else from its first capture)."""
        born = published if published is not None else first_capture if first_capture is not None else now
        tier = self.schedule.tier(max(now - born, 0.0))
        if self.fixed is not None:
            return Decision(now + self.fixed, self.fixed, tier)
        interval = self.schedule.steps[tier].interval
        if change_kind in BURST_KINDS and last_change_at is not None and now - last_change_at < self.schedule.burst:
            interval, tier = min(interval, self.schedule.shortest), 0
        return Decision(now + interval, interval, tier)


DEFAULT_POLICY = RecheckPolicy()


def next_check(
    published: float | None,
    first_capture: float | None,
    now: float,
    change_kind: str | None = None,
    last_change_at: float | None = None,
    *,
    policy: RecheckPolicy = DEFAULT_POLICY,
) -> float:
    """When an article finished at `now` is due again (see `RecheckPolicy.decide`)."""
    return policy.decide(published, first_capture, now, change_kind, last_change_at).next_check


def lateness(now: float, next_check: float, last_checked: float | None, tier: int | None) -> tuple[float, int, float]:
    """Sort key of an overdue recheck, most urgent first: how many of its own intervals it is late (so an article
    checked hourly and 3 hours late goes before one checked every 90 days and 3 days late), then younger steps first,
    then the longer wait."""
    interval = next_check - last_checked if last_checked is not None and next_check > last_checked else HOUR
    return (-(now - next_check) / max(interval, 1.0), tier if tier is not None else 1 << 30, next_check)
