"""Sum the run reports (`<output>/reports/<run>.json`) of several workers into one report of the same shape."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Keys that name one report rather than count: kept per worker in `workers`.
_PER_WORKER = ("run_id", "spider", "started", "finished", "finish_reason")


def merge_values(a: Any, b: Any) -> Any:
    """Numbers add, dicts merge key by key, lists concatenate; anything else keeps the first value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a if b is None else b if a is None else a
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = merge_values(out[key], value) if key in out else value
        return out
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return b if a is None else a


def merge_reports(reports: Iterable[tuple[str, dict[str, Any]]], run_id: str) -> dict[str, Any]:
    """One report summing the counts of `reports` ((path, report) pairs); `workers` lists each input."""
    merged: dict[str, Any] = {}
    workers: list[dict[str, Any]] = []
    for path, report in reports:
        workers.append({"path": path, **{k: report.get(k) for k in _PER_WORKER}})
        counts = {k: v for k, v in report.items() if k not in _PER_WORKER}
        merged = merge_values(merged, counts)
    if "outcome" in merged:  # the run is ok only if every worker's was: its problems, each worker's
        problems = list(merged["outcome"].get("problems") or [])
        merged["outcome"] = {"ok": not problems, "exit_status": 1 if problems else 0, "problems": problems}
    started = [w["started"] for w in workers if w.get("started")]
    finished = [w["finished"] for w in workers if w.get("finished")]
    return {
        "run_id": run_id,
        "spider": next((w["spider"] for w in workers if w.get("spider")), None),
        "started": min(started, default=None),
        "finished": max(finished, default=None),
        "finish_reason": sorted({str(w.get("finish_reason")) for w in workers}),
        **merged,
        "workers": workers,
    }


def find_reports(names: Iterable[str], output_dir: Path) -> list[Path]:
    """Report files from arguments: a file, a folder (every `reports/*.json` below it) or a run id
    (`<run>.json` and `<run>-*.json` in any `reports/` folder below `output_dir`)."""
    found: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("reports/*.json") if not p.name.endswith("-merged.json"))
        else:
            for pattern in (f"{name}.json", f"{name}-*.json"):
                found += sorted(
                    p for p in output_dir.rglob(f"reports/{pattern}") if not p.name.endswith("-merged.json")
                )
    return list(dict.fromkeys(p.resolve() for p in found))


def load(path: Path) -> dict[str, Any]:
    """One report file."""
    return json.loads(path.read_text(encoding="utf-8"))
