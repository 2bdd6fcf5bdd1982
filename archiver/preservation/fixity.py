"""Fixity checks of an output folder: every recorded file re-read and compared with its recorded digest and size.

Statuses: `ok`, `changed` (digest or size differs), `missing` (recorded, gone), `unrecorded` (an archive file that
no manifest names). With a byte budget the files checked longest ago go first; every check is appended to
`fixity/checks.jsonl`, which is both the audit trail and the memory of when each file was last checked.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from archiver.preservation import manifest
from archiver.preservation.manifest import Recorded

CHECK_LOG = "checks.jsonl"
STATUSES = ("ok", "changed", "missing", "unrecorded")


@dataclass(frozen=True, slots=True)
class Finding:
    """The outcome for one file."""

    path: str
    status: str
    size: int | None = None  # as found (None: missing)
    sha256: str | None = None  # as found (None: not read)
    recorded_size: int | None = None
    recorded_sha256: str | None = None
    checked: str | None = None  # UTC time of the check


def now_iso() -> str:
    """The time now, UTC, to the microsecond (it orders the checks of one run)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def last_checked(root: Path) -> dict[str, str]:
    """When each file was last checked, from the check log (paths relative to `root`)."""
    seen: dict[str, str] = {}
    try:
        f = open(Path(root) / manifest.FIXITY_DIR / CHECK_LOG, encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        return seen
    with f:
        for line in f:
            try:
                entry = json.loads(line)
                seen[entry["path"]] = entry["checked"]
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line
    return seen


def parse_size(text: str) -> int:
    """`10G`, `500M`, `64k` or plain bytes (powers of 1024)."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one fixity run will do."""

    to_check: list[Recorded]  # present and due, oldest check first
    missing: list[Recorded]
    unrecorded: list[str]
    not_due: int  # recorded files left for a later run by the budget
    total_bytes: int  # bytes of `to_check`


def plan(root: Path, budget: int | None = None) -> Plan:
    """Which recorded files to read (within `budget` bytes, longest unchecked first) and which are missing or
    unrecorded (found by listing and stat, outside the budget)."""
    recorded = manifest.load(root)
    present, missing = [], []
    sizes: dict[str, int] = {}
    for rel, rec in recorded.items():
        try:
            sizes[rel] = os.stat(Path(root) / rel).st_size
            present.append(rec)
        except FileNotFoundError:
            missing.append(rec)
    unrecorded = [rel for rel in manifest.archive_files(root) if rel not in recorded]
    if budget is not None:
        checked = last_checked(root)
        present.sort(key=lambda r: (checked.get(r.path, ""), r.path))
        chosen, total = [], 0
        for rec in present:
            if chosen and total + sizes[rec.path] > budget:
                break
            chosen.append(rec)
            total += sizes[rec.path]
    else:
        chosen = sorted(present, key=lambda r: r.path)
    return Plan(chosen, missing, unrecorded, len(present) - len(chosen), sum(sizes[r.path] for r in chosen))


def adopt(root: Path) -> list[Recorded]:
    """Record the unrecorded archive files of an output folder as they are now."""
    recorded = manifest.load(root)
    todo = [Path(root) / rel for rel in manifest.archive_files(root) if rel not in recorded]
    return manifest.record_closed(root, *todo)


class Progress:
    """Bytes read so far against the total, written to a stream as `x of y MB, z MB/s` every few seconds."""

    def __init__(self, total: int, stream: TextIO | None = sys.stderr, interval: float = 2.0) -> None:
        self.total, self.stream, self.interval = total, stream, interval
        self.done = 0
        self.started = self.last = time.monotonic()

    def rate(self) -> float:
        """MB/s (10^6 bytes) so far."""
        return self.done / 1e6 / max(time.monotonic() - self.started, 1e-9)

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.stream is not None and now - self.last >= self.interval:
            self.last = now
            self.stream.write(
                f"fixity: {self.done / 1e6:,.0f} of {self.total / 1e6:,.0f} MB read, {self.rate():,.0f} MB/s\n"
            )
            self.stream.flush()


def check_one(root: Path, rec: Recorded, progress: Callable[[int], None] | None = None) -> Finding:
    """Re-read one recorded file and compare it with its record (a size that differs is `changed` unread)."""
    path = Path(root) / rec.path
    try:
        size = os.stat(path).st_size
        if rec.size is not None and size != rec.size:
            return Finding(rec.path, "changed", size, None, rec.size, rec.sha256, now_iso())
        size, digests = manifest.hash_file(path, ("sha256",), progress, drop_cache=True)
    except FileNotFoundError:
        return Finding(rec.path, "missing", None, None, rec.size, rec.sha256, now_iso())
    sha = digests["sha256"]
    ok = sha == rec.sha256 and (rec.size is None or size == rec.size)
    return Finding(rec.path, "ok" if ok else "changed", size, sha, rec.size, rec.sha256, now_iso())


def run(root: Path, p: Plan, progress: Progress | None = None) -> Iterator[Finding]:
    """Carry out a plan: missing and unrecorded files first, then each due file read; every finding of a
    recorded file is appended to the check log as it is made."""
    if progress is not None:
        progress.total = p.total_bytes
    log_path = Path(root) / manifest.FIXITY_DIR / CHECK_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        for rec in p.missing:
            yield _logged(log, Finding(rec.path, "missing", None, None, rec.size, rec.sha256, now_iso()))
        for rel in p.unrecorded:
            yield Finding(rel, "unrecorded", os.stat(Path(root) / rel).st_size, None, None, None, now_iso())
        for rec in p.to_check:
            yield _logged(log, check_one(root, rec, progress))


def _logged(log: TextIO, finding: Finding) -> Finding:
    log.write(json.dumps({"path": finding.path, "status": finding.status, "checked": finding.checked}) + "\n")
    log.flush()
    return finding


def summary(counts: Counter[str], not_due: int, progress: Progress) -> str:
    """The closing line of a fixity run."""
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    due = f"; {not_due} recorded files left for a later run (budget)" if not_due else ""
    seconds = time.monotonic() - progress.started
    return f"fixity: {parts}{due}; {progress.done / 1e6:,.1f} MB read in {seconds:.1f} s ({progress.rate():,.0f} MB/s)"


def as_json(finding: Finding) -> str:
    """One finding as a JSON object on one line."""
    return json.dumps(asdict(finding), ensure_ascii=False)
