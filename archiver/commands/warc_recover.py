"""`scrapy warc-recover [DIR|FILE...]`: close orphaned `.open` WARC files left by a killed crawl.

Only `.open` files are touched (a closed one only with `--force`); each line says what was done to a file. The
CDXJ index of a cut file is written again, and the state forgets captures whose records were cut off, so their
articles are fetched again by the next run; every file closed is recorded in the fixity manifest.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand

from archiver import config
from archiver.config import output_dir
from archiver.preservation.manifest import record_closed
from archiver.state.errors import StateError
from archiver.state.store import State
from archiver.warc.cdxj import cdxj_path, write_cdxj
from archiver.warc.check import check_file
from archiver.warc.recover import ClosedFileError, LiveFileError, Recovery, orphans, recover_file
from archiver.warc.writer import OPEN_SUFFIX, warc_files


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--force] [DIR|FILE...]"

    def short_desc(self) -> str:
        return "Recover orphaned .open WARC files (default: <ARCHIVER_OUTPUT_DIR>/warc)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--force", action="store_true", help="also files whose named pid looks alive, and closed files"
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        targets = [Path(a) for a in args] or [output_dir(self.settings) / "warc"]
        files: list[Path] = []
        for t in targets:
            if t.is_dir():
                files += warc_files(t, open_files=True) if opts.force else orphans(t)
            else:
                files.append(t)
        failed = 0
        for path in files:
            try:
                rec = recover_file(path, force=opts.force)
            except (ClosedFileError, LiveFileError, OSError) as e:
                print(f"{path}: not recovered, unchanged: {e}")
                failed += 1
                continue
            self.forget(rec)
            if rec.path is None:
                with contextlib.suppress(FileNotFoundError):
                    cdxj_path(rec.source.with_name(rec.source.name.removesuffix(OPEN_SUFFIX))).unlink()
                print(f"{path}: removed (no complete record)")
                continue
            if rec.dropped_bytes or rec.source != rec.path:
                write_cdxj(rec.path)
            record_closed(rec.path.parent.parent, rec.path, cdxj_path(rec.path))
            result = check_file(rec.path)
            state = "valid" if result.ok else f"{len(result.problems)} problems"
            done = f"renamed to {rec.path.name}" if rec.source != rec.path else "cut in place"
            if rec.source == rec.path and not rec.dropped_bytes:
                done = "nothing to cut, unchanged"
            print(f"{rec.path}: {done}: {rec.records} records kept, {rec.dropped_bytes} bytes cut, {state}")
            for p in result.problems:
                print(p)
            failed += not result.ok
        if not files:
            print("no orphaned .open WARC files")
        if failed:
            self.exitcode = 1

    def forget(self, rec: Recovery) -> None:
        """Make the state forget the captures in the part of the file that was cut off."""
        assert self.settings is not None
        out = output_dir(self.settings)
        path = config.state_path(self.settings)
        if not rec.dropped_bytes or not path.exists():
            return
        name = rec.source.name.removesuffix(OPEN_SUFFIX)
        try:
            with State.open(path, lock_path=out / ".lock") as state:
                articles = state.forget_captures(name, rec.kept_bytes)
        except StateError as e:
            print(f"{name}: state not updated: {e}")
            return
        if articles:
            print(f"{name}: the state forgot the captures cut off; {len(articles)} articles are fetched again")
