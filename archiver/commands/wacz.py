"""`scrapy wacz [--run RUN_ID | --all | WARC...] -o out.wacz`: package WARCs into a WACZ, pages from the items.

Without a run or files it packages the latest run. Only capture files go in (`*.warc.gz`): the extracted text is in
pages/pages.jsonl, where ReplayWeb.page searches it, and conversion records indexed as captures would shadow pages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver.config import output_dir
from archiver.preservation.closure import closure
from archiver.warc.wacz import (
    create_wacz,
    latest_run,
    pages_from_items,
    run_warcs,
    validate_wacz,
    warcinfo_fields,
    write_pages,
)


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--run RUN_ID | --all | WARC...] -o OUT.wacz"

    def short_desc(self) -> str:
        return "Package WARC files into a WACZ (pages from the items), then validate it"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", dest="wacz_output", required=True, help="the .wacz to write")
        parser.add_argument("--run", help="package the WARCs and items of this run id (default: the latest run)")
        parser.add_argument("--all", action="store_true", help="package every WARC file and item of the output folder")
        parser.add_argument("--output-dir", help="archiver output folder (default ARCHIVER_OUTPUT_DIR)")
        parser.add_argument(
            "--no-closure", action="store_true", help="with --run: leave out earlier files holding revisit originals"
        )
        parser.add_argument("--roles", default="page", help="capture roles listed as pages (comma-separated)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        output = Path(opts.output_dir) if opts.output_dir else output_dir(self.settings)
        if sum(map(bool, (opts.run, opts.all, args))) > 1:
            raise UsageError("give one of --run, --all or WARC files")
        run = opts.run
        carried: list[Path] = []
        if args:
            warcs = [Path(a) for a in args]
            runs = {warcinfo_fields(w).get("isPartOf") for w in warcs} - {None}
            item_files = [p for r in runs for p in sorted((output / "items").glob(f"{r}*.jsonl"))]
            if not item_files:
                item_files = sorted((output / "items").glob("*.jsonl"))
        elif opts.all:
            warcs = sorted((output / "warc").glob("*.warc.gz"))
            item_files = sorted((output / "items").glob("*.jsonl"))
        else:
            run = run or latest_run(output)
            if run is None:
                print(f"no run in {output}: nothing to package", file=sys.stderr)
                self.exitcode = 1
                return
            warcs = run_warcs(output / "warc", run)
            item_files = sorted((output / "items").glob(f"{run}*.jsonl"))
            if not opts.no_closure:  # a later run's revisits replay only with the files holding their originals
                carried = sorted(closure(output / "warc", warcs).originals)
        if not warcs:
            print("no WARC files to package", file=sys.stderr)
            self.exitcode = 1
            return
        roles = [r.strip() for r in opts.roles.split(",") if r.strip()]
        pages = pages_from_items(item_files, roles)
        with tempfile.TemporaryDirectory() as tmp:
            pages_file = write_pages(pages, Path(tmp) / "pages.jsonl") if pages else None
            create_wacz(warcs + carried, Path(opts.wacz_output), pages_file, title=run)
        ok, report = validate_wacz(Path(opts.wacz_output))
        print(
            f"{opts.wacz_output}: {len(warcs)} WARC files, {len(carried)} earlier ones holding revisit originals, "
            f"{len(pages)} pages, validate {'passed' if ok else 'FAILED'}"
        )
        if not ok:
            print(report)
            self.exitcode = 1
