"""`scrapy schedule`: how many rechecks fall due in the next hour, day and week, to size cron and the budget."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver import config
from archiver.run.schedule import DAY, HOUR, WEEK, RecheckPolicy, format_duration, format_span, parse_duration
from archiver.state.store import State

WINDOWS = (("now", 0.0), ("1h", HOUR), ("1d", DAY), ("1w", WEEK))


def outlook(state: State, policy: RecheckPolicy, budget: int | None, every: float, now: float) -> dict[str, Any]:
    """Due rechecks by window, articles and rechecks per day by age step, and whether the budget keeps up."""
    fixed = policy.fixed
    due = {label: state.count_due(now + ahead, recheck_after=fixed)[0] for label, ahead in WINDOWS}
    first = state.count_due(now, recheck_after=fixed)[1]
    by_tier = state.count_by_tier()
    archived = sum(by_tier.values())
    steps, per_day = [], 0.0
    for tier, step in enumerate(policy.schedule.steps):
        n = by_tier.pop(tier, 0)
        interval = fixed if fixed is not None else step.interval
        load = n * DAY / interval if interval else float(n)
        per_day += load
        age = "older" if step.age == float("inf") else f"< {format_duration(step.age)}"
        steps.append(
            {"age": age, "interval": format_duration(interval), "articles": n, "rechecks_per_day": round(load, 1)}
        )
    unscheduled = sum(by_tier.values())  # archived before the schedule (or by a longer one): due at their old time
    per_run = per_day * every / DAY
    return {
        "now": now,
        "schedule": str(policy.schedule) if fixed is None else None,
        "fixed_interval": fixed,
        "budget": budget,
        "run_every": format_duration(every),
        "archived": archived,
        "due": due,
        "oldest_overdue_seconds": round(now - first, 1) if first is not None and first <= now else 0.0,
        "steps": steps,
        "not_yet_scheduled": unscheduled,
        "rechecks_per_day": round(per_day, 1),
        "rechecks_per_run": round(per_run, 1),
        "budget_keeps_up": budget is None or budget >= per_run,
    }


def to_text(o: dict[str, Any]) -> str:
    """The outlook for people."""
    mode = f"fixed interval {format_duration(o['fixed_interval'])}" if o["schedule"] is None else o["schedule"]
    budget = "no limit" if o["budget"] is None else str(o["budget"])
    d = o["due"]
    lines = [
        f"archived articles: {o['archived']}; schedule: {mode}; budget per run: {budget}",
        f"due now: {d['now']}" + (f" (oldest overdue {format_span(o['oldest_overdue_seconds'])})" if d["now"] else ""),
        f"due within 1 hour: {d['1h']}, 1 day: {d['1d']}, 1 week: {d['1w']}",
        "age step        interval  articles  rechecks/day",
    ]
    lines += [
        f"  {s['age']:<13} {s['interval']:>8}  {s['articles']:>8}  {s['rechecks_per_day']:>12}" for s in o["steps"]
    ]
    if o["not_yet_scheduled"]:
        lines.append(f"  not yet scheduled by age: {o['not_yet_scheduled']} (they are due at their earlier time)")
    verdict = "keeps up" if o["budget_keeps_up"] else "is too small: overdue rechecks will pile up"
    lines.append(
        f"steady load: {o['rechecks_per_day']} rechecks/day, {o['rechecks_per_run']} per run every {o['run_every']}; "
        f"the budget {verdict}"
    )
    return "\n".join(lines)


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Show how many rechecks fall due in the next hour, day and week"

    def long_desc(self) -> str:
        return (
            "Read the output folder's state and show the rechecks due now and within an hour, a day and a week, "
            "the archived articles and rechecks per day by age step of ARCHIVER_RECHECK_SCHEDULE (or the fixed "
            "ARCHIVER_RECHECK_AFTER), and whether ARCHIVER_RECHECK_BUDGET keeps up with runs every --every. "
            "Nothing is fetched or claimed (an older state file is first migrated, as a run would). Exit status 1 "
            "when there is no state."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--state", metavar="PATH", help="state file (default: ARCHIVER_STATE_PATH or <output>)")
        parser.add_argument("--every", default="1h", metavar="SPAN", help="time between runs, e.g. 1h (default)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("no arguments expected (use --state PATH or -s ARCHIVER_OUTPUT_DIR=...)")
        assert self.settings is not None
        settings = self.settings
        try:
            policy, budget = config.recheck_policy(settings), config.recheck_budget(settings)
            every = parse_duration(opts.every)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        path = Path(opts.state) if opts.state else config.state_path(settings)
        if not path.is_file():
            sys.stderr.write(f"no state at {path}: nothing archived there yet (set ARCHIVER_OUTPUT_DIR or --state)\n")
            self.exitcode = 1
            return
        with State.open(path, recheck=policy) as state:
            o = outlook(state, policy, budget, every or HOUR, time.time())
        sys.stdout.write((json.dumps(o, indent=1) if opts.json else to_text(o)) + "\n")
