"""`scrapy fixity [DIR] [--json] [--budget BYTES]`: re-read every recorded file of an output folder and compare it
with the digest recorded when it was closed."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver.config import output_dir
from archiver.preservation import fixity


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[DIR] [--json] [--budget BYTES] [--adopt]"

    def short_desc(self) -> str:
        return "Check the recorded digests of an output folder's files: ok, changed, missing, unrecorded"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--json", action="store_true", help="one JSON object per file")
        parser.add_argument(
            "--budget", help="read at most this many bytes (e.g. 500G), files checked longest ago first"
        )
        parser.add_argument("--quiet", action="store_true", help="list only files that are not ok")
        parser.add_argument(
            "--adopt",
            action="store_true",
            help="record the digests of unrecorded files as they are now (closed by a crawl killed before it "
            "recorded them, or written before archiver recorded digests), then check",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if len(args) > 1:
            raise UsageError("give at most one output folder")
        root = Path(args[0]) if args else output_dir(self.settings)
        if not root.is_dir():
            raise UsageError(f"{root}: no such output folder")
        try:
            budget = fixity.parse_size(opts.budget) if opts.budget else None
        except ValueError as e:
            raise UsageError(f"--budget {opts.budget!r}: not a byte count") from e
        if opts.adopt:
            for rec in fixity.adopt(root):
                print(f"{'recorded':<10} {rec.path}", file=sys.stderr if opts.json else sys.stdout)
        plan = fixity.plan(root, budget)
        progress = fixity.Progress(plan.total_bytes)
        counts: Counter[str] = Counter()
        for finding in fixity.run(root, plan, progress):
            counts[finding.status] += 1
            if opts.json:
                print(fixity.as_json(finding), flush=True)
            elif finding.status != "ok" or not opts.quiet:
                print(f"{finding.status:<10} {finding.path}", flush=True)
        print(fixity.summary(counts, plan.not_due, progress), file=sys.stderr if opts.json else sys.stdout)
        if not sum(counts.values()):
            print(f"{root}: no recorded files", file=sys.stderr)
        if sum(counts.values()) != counts["ok"] or not counts:
            self.exitcode = 1
