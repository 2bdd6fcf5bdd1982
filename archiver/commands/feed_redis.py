"""`scrapy feed-redis PATH...`: push the articles of new feed dumps to the Redis job queue of the workers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver import config


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options] PATH ..."

    def short_desc(self) -> str:
        return "Push the articles of new feed dumps (files, folders, globs) to the Redis job queue"

    def long_desc(self) -> str:
        return (
            "Read feed dumps with the spider's reader, merge dumps of the same article id into one job, skip "
            "dumps fed before and articles archived or queued, push the rest to Redis (REDIS_URL) for workers "
            "started with SCRAPY_SETTINGS_MODULE=settings.distributed. Prints a summary; exit status 1 when a "
            "dump failed. With --status and no PATH: print the queue's counts."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--refeed", action="store_true", help="read dumps fed before again (retries failures)")
        parser.add_argument("--force", action="store_true", help="push articles already archived or queued too")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--status", action="store_true", help="print the queue's counts")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        settings = self.settings
        assert settings is not None
        # Imported here: every `scrapy` command loads this module, and redis is the optional [distributed] extra.
        from archiver.distributed.connection import client, keys
        from archiver.distributed.feeder import Feeder
        from archiver.distributed.queue import JobQueue

        conn = client(settings)
        if opts.status:
            status = JobQueue(conn, keys(settings)).status()
            sys.stdout.write(json.dumps(status, ensure_ascii=False, indent=2) + "\n")
            if not args:
                return
        if not args:
            raise UsageError("name at least one dump file, folder or glob")
        feeder = Feeder(conn, keys(settings), max_bytes=int(config.get(settings, "ARCHIVER_DUMP_MAX_BYTES")))
        summary = feeder.feed(args, refeed=opts.refeed, force=opts.force)
        if opts.json:
            sys.stdout.write(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n")
        else:
            where = conn.connection_pool.connection_kwargs
            sys.stdout.write(
                f"fed {where.get('host')}:{where.get('port')} {keys(settings).jobs}\n{summary.to_text()}\n"
            )
        if summary.dumps["failed"]:
            self.exitcode = 1
