"""`scrapy schedule`: what falls due in the next hour, day and week, read from a real state file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from test_run_schedule import DAY, DEFAULT_BUDGET, HOUR, YEAR, archive

from archiver.state.store import State

ROOT = Path(__file__).resolve().parents[1]


def test_schedule_command_shows_what_falls_due_and_whether_the_budget_keeps_up(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "out" / "state.sqlite3"
    with State.open(path) as state:
        for aid, age in ((1, 2 * HOUR), (2, 3 * DAY), (3, 10 * DAY), (4, 3 * YEAR)):
            archive(state, aid, now, published=now - age)
        archive(state, 5, now - 200 * DAY, published=now - 3 * YEAR)  # 110 days overdue
    cmd = [sys.executable, "-m", "scrapy", "schedule", "-s", f"ARCHIVER_OUTPUT_DIR={tmp_path / 'out'}"]
    out = subprocess.run([*cmd, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    o = json.loads(out.stdout)
    assert o["archived"] == 5 and o["due"] == {"now": 1, "1h": 2, "1d": 4, "1w": 4}
    assert 110 * DAY <= o["oldest_overdue_seconds"] < 110 * DAY + 60
    assert [s["articles"] for s in o["steps"]] == [1, 1, 1, 0, 2]
    assert o["rechecks_per_day"] == round(24 + 4 + 1 + 2 / 90, 1) and o["rechecks_per_run"] == round(
        o["rechecks_per_day"] / 24, 1
    )
    assert o["budget"] == DEFAULT_BUDGET and o["budget_keeps_up"]
    text = subprocess.run(
        [*cmd, "-s", "ARCHIVER_RECHECK_BUDGET=1"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "due within 1 hour: 2, 1 day: 4, 1 week: 4" in text.stdout
    assert "oldest overdue 110d" in text.stdout and "the budget is too small" in text.stdout
    fixed = subprocess.run(
        [*cmd, "--json", "-s", "ARCHIVER_RECHECK_AFTER=86400"], cwd=ROOT, capture_output=True, text=True
    )
    assert json.loads(fixed.stdout)["due"]["now"] == 1 and json.loads(fixed.stdout)["fixed_interval"] == DAY
    missing = subprocess.run(
        [*cmd[:-1], f"ARCHIVER_OUTPUT_DIR={tmp_path / 'none'}"], cwd=ROOT, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "no state at" in missing.stderr
