"""`scrapy merge-report RUN_ID|REPORT.json|FOLDER...`: sum the run reports of several workers into one."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver import config
from archiver.distributed.merge import find_reports, load, merge_reports
from archiver.preservation import manifest
from archiver.run.report import RunReport


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options] RUN_ID|REPORT.json|FOLDER ..."

    def short_desc(self) -> str:
        return "Sum the run reports of several workers into one report"

    def long_desc(self) -> str:
        return (
            "Sum the per-worker run reports (<output>/reports/<run>.json): a report file, a folder (every "
            "reports/*.json below it) or a run id (<run>.json and <run>-*.json below ARCHIVER_OUTPUT_DIR). "
            "Counts add up, lists of files and failures are joined, each input is listed under `workers`. "
            "Prints the summary and writes <output>/reports/<name>-merged.json (or -o PATH)."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output-file", metavar="PATH", help="where to write the merged report")
        parser.add_argument("--name", help="run id of the merged report (default: the first argument's name)")
        parser.add_argument("--json", action="store_true", help="print the merged report as JSON")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args:
            raise UsageError("name a run id, report files or folders")
        assert self.settings is not None
        output = config.output_dir(self.settings)
        paths = find_reports(args, output)
        if not paths:
            raise UsageError(f"no run report found for {', '.join(args)} (below {output})")
        first = Path(args[0].rstrip("/"))
        name = opts.name or (first.stem if first.is_file() else first.name)
        merged = merge_reports(((str(p), load(p)) for p in paths), name)
        target = Path(opts.output_file) if opts.output_file else output / "reports" / f"{name}-merged.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(merged, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        if manifest.inside(output, target):  # a report in the output folder: recorded like the runs' own
            manifest.record_closed(output, target)
        if opts.json:
            sys.stdout.write(json.dumps(merged, ensure_ascii=False, indent=2) + "\n")
        else:
            sys.stdout.write(f"{len(paths)} reports merged\n{RunReport.summary(merged, target)}\n")
