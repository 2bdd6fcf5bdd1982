"""Which fault the stand-in plays for a request: per article/image id, or by a seeded schedule.

Spec: comma-separated `TARGET:FAULT[xN]`; TARGET is an id or `*`, optionally `@page`, `@api` or `@image`;
`xN` limits the fault to the first N visits (a transient failure that a retry or a later run gets past).
Example: `54243544:404,1048137@api:reset,*@image:503x1`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

ROLES = ("page", "api", "image")

FAULTS = (
    "404",
    "410",
    "500",
    "503",
    "429",
    "slow",
    "reset",
    "truncated",
    "oversized",
    "gzip_bomb",
    "invalid_json",
    "wrong_charset",
    "redirect_loop",
    "redirect_offsite",
    "changes",
)

# Faults a scheduled rate draws from unless told otherwise: the ones a crawl meets on a bad day.
DEFAULT_POOL = ("404", "500", "503", "429", "reset", "truncated")

_RULE = re.compile(r"^(\*|\d+)(?:@(page|api|image))?:(\d{3}|[a-z_]+)(?:x(\d+))?$")


class FaultSpecError(ValueError):
    """A fault spec that cannot be read."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One `TARGET:FAULT[xN]` item."""

    target: int | None  # None = every id
    role: str | None  # None = every role
    fault: str
    times: int | None = None  # None = every visit

    def matches(self, role: str, resource_id: int, visit: int) -> bool:
        return (
            (self.target is None or self.target == resource_id)
            and (self.role is None or self.role == role)
            and (self.times is None or visit <= self.times)
        )


@dataclass(frozen=True)
class FaultPlan:
    """Faults by rule, then by a seeded rate; plus the knobs the slow, oversized and retry faults use."""

    rules: tuple[FaultRule, ...] = ()
    rate: float = 0.0
    pool: tuple[str, ...] = DEFAULT_POOL
    seed: int | None = None  # None: the Standin's seed
    slow_seconds: float = 45.0  # beyond the default DOWNLOAD_TIMEOUT of 30
    oversize_bytes: int = 40 * 1024 * 1024  # beyond the default DOWNLOAD_MAXSIZE of 32 MiB
    retry_after: int = 5
    roles: tuple[str, ...] = field(default=ROLES)  # roles the scheduled rate applies to

    @classmethod
    def parse(cls, spec: str | None, **options: object) -> FaultPlan:
        """A plan from a spec string (see module doc) and keyword options."""
        rules = []
        for item in (spec or "").replace(" ", "").split(","):
            if not item:
                continue
            m = _RULE.match(item)
            if not m or m.group(3) not in FAULTS:
                raise FaultSpecError(f"bad fault rule {item!r}; faults: {', '.join(FAULTS)}")
            target, role, fault, times = m.groups()
            rules.append(FaultRule(None if target == "*" else int(target), role, fault, int(times) if times else None))
        pool = options.pop("pool", None) or DEFAULT_POOL
        if isinstance(pool, str):
            pool = tuple(p for p in pool.split(",") if p)
        bad = [p for p in pool if p not in FAULTS]
        if bad:
            raise FaultSpecError(f"unknown faults in pool: {bad}")
        return cls(rules=tuple(rules), pool=tuple(pool), **options)  # type: ignore[arg-type]

    def fault_for(self, role: str, resource_id: int, visit: int = 1) -> str | None:
        """The fault for the `visit`-th request (from 1) of this role and id, or None."""
        for rule in self.rules:
            if rule.matches(role, resource_id, visit):
                return rule.fault
        if self.rate > 0 and role in self.roles and self.pool:
            digest = hashlib.sha256(f"{self.seed or 0}:{role}:{resource_id}".encode()).digest()
            if int.from_bytes(digest[:8], "big") / 2**64 < self.rate:
                return self.pool[int.from_bytes(digest[8:12], "big") % len(self.pool)]
        return None

    @property
    def active(self) -> bool:
        return bool(self.rules) or self.rate > 0
