"""`scrapy bag [--run RUN_ID ...] -o BAGDIR [--tar] [--no-closure]`: a BagIt bag of closed files for a
preservation repository, every file verified against the digest recorded when it was closed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver.config import get, output_dir
from archiver.preservation.bag import BagRefused, bag_info, build, select


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--run RUN_ID ...] -o BAGDIR [--tar] [--no-closure]"

    def short_desc(self) -> str:
        return "Make a BagIt bag of the closed WARC files, CDXJ, items and reports (of some runs, or all)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", dest="bag_output", required=True, help="the bag to make (must not exist)")
        parser.add_argument("--run", action="append", default=[], help="a run id (repeatable); default: every run")
        parser.add_argument("--output-dir", help="archiver output folder (default ARCHIVER_OUTPUT_DIR)")
        parser.add_argument("--tar", action="store_true", help="write the bag as one uncompressed tar file")
        parser.add_argument(
            "--no-closure",
            action="store_true",
            help="leave out the earlier WARC files that hold revisit originals; list them in bag-info instead",
        )
        parser.add_argument("--copy", action="store_true", help="copy files into the bag instead of hard links")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}")
        root = Path(opts.output_dir) if opts.output_dir else output_dir(self.settings)
        if not root.is_dir():
            raise UsageError(f"{root}: no such output folder")
        sel = select(root, opts.run or None, with_closure=not opts.no_closure)
        if not any(f.endswith(".warc.gz") for f in sel.files):
            print(f"{root}: no closed WARC files" + (f" of run {', '.join(opts.run)}" if opts.run else ""))
            self.exitcode = 1
            return
        info = bag_info(root, sel, self.settings.getdict("ARCHIVER_BAG_INFO", get(self.settings, "ARCHIVER_BAG_INFO")))
        try:
            result = build(root, sel, Path(opts.bag_output), info, tar=opts.tar, link=not opts.copy)
        except BagRefused as e:
            print(f"bag refused: {len(e.problems)} files do not match what was recorded", file=sys.stderr)
            for problem in e.problems:
                print(f"  {problem}", file=sys.stderr)
            self.exitcode = 1
            return
        except FileExistsError as e:
            print(f"bag refused: {e}", file=sys.stderr)
            self.exitcode = 1
            return
        closure = (
            f"{len(sel.carried)} earlier WARC files carried for {sel.revisits} revisits"
            if sel.carried
            else f"{len(sel.dependencies)} WARC files listed as dependencies"
            if sel.dependencies
            else "no revisit needs another file"
        )
        print(
            f"{result.path}: {result.files} files, {result.bytes / 1e6:,.1f} MB "
            f"({result.links} hard links, {result.copies} copies); {closure}"
        )
        if sel.unresolved:
            print(f"warning: {sel.unresolved} revisits refer to records found in no WARC file of {root}")
