"""`scrapy state-rebuild [--force]`: a new state file from the output folder's items, reports and WARC files.

The fix a run names when it refuses a damaged state, or a new state beside earlier runs. The old file is kept
beside the new one as `state.sqlite3.damaged-<UTC time>`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand

from archiver import config
from archiver.state.errors import StateError
from archiver.state.rebuild import rebuild_state
from archiver.state.store import State

SIDE_FILES = ("", "-wal", "-shm")


def sound_articles(path: Path) -> int | None:
    """How many articles a state file holds if it opens and passes its check; None when damaged or empty."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with State.open(path, lock_path=path.with_name(".probe-lock")) as state:
            return state.count_articles()
    except (StateError, sqlite3.DatabaseError):
        return None


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--force] [--json]"

    def short_desc(self) -> str:
        return "Rebuild the state file from the output folder (items, reports, WARC records)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--force", action="store_true", help="also replace a state file that is sound")
        parser.add_argument("--json", action="store_true", help="print what was rebuilt as JSON")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        out = config.output_dir(self.settings)
        path = config.state_path(self.settings)
        if not out.is_dir():
            print(f"{out}: no such output folder")
            self.exitcode = 1
            return
        held = sound_articles(path)
        if held and not opts.force:
            print(f"{path} is sound ({held} articles): nothing to rebuild (--force rebuilds it anyway)")
            self.exitcode = 1
            return
        new = path.with_name(path.name + ".rebuilding")
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{new}{suffix}")
        try:
            state = State.open(new, lock_path=out / ".lock")
            state.acquire_run_lock("state-rebuild")
        except StateError as exc:
            print(f"state not rebuilt: {exc}")
            self.exitcode = 1
            return
        try:
            result = rebuild_state(out, state)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = None
            for suffix in SIDE_FILES:
                old = Path(f"{path}{suffix}")
                if old.exists():
                    target = Path(f"{path}.damaged-{stamp}{suffix}")
                    os.replace(old, target)
                    kept = kept or target
        finally:
            state.close()
        os.replace(new, path)
        summary = {
            "state": str(path),
            "old_state_kept_as": str(kept) if kept else None,
            "articles_archived": result.archived,
            "articles_to_retry": result.retry,
            "captures": result.captures,
            "captures_missing": len(result.missing),
            "runs": result.runs,
            "dumps": result.dumps,
        }
        if opts.json:
            print(json.dumps(summary | {"missing": result.missing[:1000]}, indent=2))
            return
        print(
            f"{path}: rebuilt from {out}: {result.archived} articles archived, {result.retry} to fetch again, "
            f"{result.captures} captures, {result.runs} runs, {result.dumps} dumps"
        )
        if kept:
            print(f"the old state file is kept as {kept}")
        for line in result.missing[:20]:
            print(f"record missing: {line} (its article is fetched again)")
