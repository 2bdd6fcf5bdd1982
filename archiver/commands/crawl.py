"""`scrapy crawl`, as Scrapy runs it, with archiver's checks around it.

Before anything is opened or written: every ARCHIVER_* setting and the main job's arguments are checked against
the registry (archiver/config.py), and the output folder must be usable; a bad value is one line and exit status 2.
After the crawl: exit status 1 unless the run report says every planned article is archived or accounted for
(a loss, an unwritten report or an interrupted run is never a success).
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.settings import BaseSettings

from archiver import config
from archiver.run.report import RunReport

MAIN_SPIDER = "feeddump"


def start_problems(settings: BaseSettings, spider: str, spargs: dict[str, str]) -> list[str]:
    """One line per setting or argument that would make the run fail or do the wrong thing."""
    problems = config.validate_settings(settings)
    if spider == MAIN_SPIDER:
        try:
            config.parse_spider_args(spargs)
        except config.BadValue as exc:
            problems.append(str(exc))
        dumps = [p for p in (spargs.get("dumps") or "").split(",") if p.strip()]
        if dumps and config.get(settings, "ARCHIVER_READ_DUMPS"):
            missing = config.missing_dumps(dumps)
            if missing:
                problems.append(missing)
    unusable = config.output_problem(settings)
    if unusable:
        problems.append(unusable)
    return problems


class Command(ScrapyCrawl):
    """Scrapy's crawl command: same syntax and options; checked start, honest exit status."""

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)  # Scrapy's usage errors
            return
        assert self.settings is not None and self.crawler_process is not None
        problems = start_problems(self.settings, args[0], opts.spargs)
        if problems:
            for line in problems:
                sys.stderr.write(f"archiver: refused to start: {line}\n")
            self.exitcode = 2
            return
        crawler = self.crawler_process.create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
            return
        try:
            report = crawler.get_extension(RunReport)
        except RuntimeError:  # the crawl never got as far as its extensions
            report = None
        if report is None:
            return
        if report.exit_status is None:
            # A forced shutdown (a second Ctrl-C) stops the reactor before engine_stopped: the report is written here.
            report.finish("killed" if report.finish_reason == "unknown" else report.finish_reason)
            self.exitcode = 1
        else:
            self.exitcode = report.exit_status
