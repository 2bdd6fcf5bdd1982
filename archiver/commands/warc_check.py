"""`scrapy warc-check FILE...`: validate WARC files (digests, WARC 1.0/1.1 field policy, HTTP sanity)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver.warc.check import check_file
from archiver.warc.writer import warc_files


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--version 1.0|1.1] [-q] FILE|DIR..."

    def short_desc(self) -> str:
        return "Validate WARC files; one line per problem, non-zero exit if any"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--version", dest="warc_version", choices=("1.0", "1.1"), help="expected WARC version")
        parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args:
            raise UsageError("name at least one WARC file or folder")
        files: list[Path] = []
        for arg in args:
            p = Path(arg)
            if not p.is_dir():
                files.append(p)
                continue
            found = warc_files(p) + sorted(p.glob("*.warc"))
            if not found:
                still_open = len(warc_files(p, open_files=True))
                unfinished = f" ({still_open} .open files not closed yet: `scrapy warc-recover`)" if still_open else ""
                print(f"{p}: no closed WARC file to check{unfinished}", file=sys.stderr)
                self.exitcode = 1
            files += found
        bad = 0
        for path in files:
            result = check_file(path, opts.warc_version)
            for problem in result.problems:
                print(problem)
            if not result.ok:
                bad += 1
            elif not opts.quiet:
                types = ", ".join(f"{n} {t}" for t, n in sorted(result.types.items()))
                print(f"{path}: OK, {result.records} records ({types})")
        if bad:
            print(f"{bad} of {len(files)} files failed", file=sys.stderr)
            self.exitcode = 1
