"""`scrapy warc-get RECORD_ID|URL`: print an archived response (headers, then the decoded body)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver.config import output_dir
from archiver.warc.lookup import archived_response, find_by_record_id, find_by_url, read_record_at


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--output-dir DIR] [--body-only] RECORD_ID|URL"

    def short_desc(self) -> str:
        return "Print an archived response by record id or URL (newest capture)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--output-dir", help="archiver output folder (default ARCHIVER_OUTPUT_DIR)")
        parser.add_argument("--body-only", action="store_true", help="print the decoded body only")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("name one record id or URL")
        assert self.settings is not None
        output = Path(opts.output_dir) if opts.output_dir else output_dir(self.settings)
        key = args[0]
        by_id = key.startswith(("<urn:", "urn:"))
        loc = find_by_record_id(output, key) if by_id else find_by_url(output / "warc", key)
        if loc is None:
            print(f"not archived: {key}", file=sys.stderr)
            self.exitcode = 1
            return
        try:
            record = read_record_at(loc.warc_file, loc.offset)
            # An archived gzip bomb is printed as stored, never inflated past DOWNLOAD_MAXSIZE.
            head, body = archived_response(output / "warc", record, self.settings.getint("DOWNLOAD_MAXSIZE") or None)
        except (OSError, ValueError, EOFError) as exc:
            print(f"{key}: record unreadable at {loc.warc_file}@{loc.offset}: {exc}", file=sys.stderr)
            self.exitcode = 1
            return
        out = sys.stdout.buffer
        if not opts.body_only:
            out.write(head)
        out.write(body)
        out.flush()
