"""`scrapy warc-recover [DIR|FILE...]`: close orphaned `.open` WARC files left by a killed crawl."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand

from archiver.config import output_dir
from archiver.warc.check import check_file
from archiver.warc.recover import LiveFileError, orphans, recover_file
from archiver.warc.writer import TEXT_SUFFIX


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
        parser.add_argument("--force", action="store_true", help="also files whose named pid looks alive")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        targets = [Path(a) for a in args] or [output_dir(self.settings) / "warc"]
        files: list[Path] = []
        for t in targets:
            if t.is_dir():
                found = [*t.glob("*.warc.gz.open"), *t.glob(f"*{TEXT_SUFFIX}.open")]
                files += sorted(found) if opts.force else orphans(t)
            else:
                files.append(t)
        failed = 0
        for path in files:
            try:
                rec = recover_file(path, force=opts.force)
            except (LiveFileError, OSError) as e:
                print(f"{path}: not recovered: {e}")
                failed += 1
                continue
            if rec.path is None:
                print(f"{path}: removed (no complete record)")
                continue
            result = check_file(rec.path)
            state = "valid" if result.ok else f"{len(result.problems)} problems"
            print(f"{rec.path}: {rec.records} records kept, {rec.dropped_bytes} bytes cut, {state}")
            for p in result.problems:
                print(p)
            failed += not result.ok
        if not files:
            print("no orphaned .open WARC files")
        if failed:
            self.exitcode = 1
