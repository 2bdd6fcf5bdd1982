"""`scrapy dumps PATH...`: read feed dumps and print what each file gave, or a summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archiver import config
from archiver.dw.dumps import KINDS, DumpResult, iter_dumps

NOT_DW = "not a DW article"


@dataclass
class Summary:
    """What a set of dump files gave: counts, every file not parsed, and duplicate article ids."""

    files: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    not_dw: list[str] = field(default_factory=list)
    skipped: list[DumpResult] = field(default_factory=list)
    failed: list[DumpResult] = field(default_factory=list)
    by_id: defaultdict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, result: DumpResult) -> None:
        """Account for one file."""
        self.files += 1
        entry = result.entry
        if entry is None:
            (self.skipped if result.skipped else self.failed).append(result)
            return
        self.kinds[entry.kind] += 1
        if entry.article_id is None:
            self.not_dw.append(entry.path)
        else:
            self.by_id[entry.article_id].append(entry.path)

    @property
    def parsed(self) -> int:
        return self.kinds.total()

    @property
    def duplicates(self) -> dict[int, list[str]]:
        """Article ids named by more than one file, with those files."""
        return {i: paths for i, paths in sorted(self.by_id.items()) if len(paths) > 1}

    def to_dict(self) -> dict[str, Any]:
        """The summary as one JSON-ready object."""
        reasons = Counter(r.error.reason for r in self.failed + self.skipped if r.error)
        return {
            "files": self.files,
            "parsed": self.parsed,
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "kinds": {k: self.kinds[k] for k in KINDS},
            "dw_entries": self.parsed - len(self.not_dw),
            "article_ids": len(self.by_id),
            "not_dw": self.not_dw,
            "reasons": dict(sorted(reasons.items())),
            "skipped_files": [_problem(r) for r in self.skipped],
            "failed_files": [_problem(r) for r in self.failed],
            "duplicates": {str(i): paths for i, paths in self.duplicates.items()},
        }

    def to_text(self) -> str:
        """The summary for people: one count per line, then every file that needs a look."""
        q = _quote
        d = self.to_dict()
        kinds = ", ".join(f"{k} {n}" for k, n in d["kinds"].items())
        lines = [
            f"files: {d['files']} (parsed {d['parsed']}, skipped {d['skipped']}, failed {d['failed']})",
            f"parsed by kind: {kinds}",
            f"DW entries: {d['dw_entries']} ({d['article_ids']} distinct article ids); {NOT_DW}: {len(self.not_dw)}",
        ]
        lines += [f"  {NOT_DW}: {q(p)}" for p in self.not_dw]
        if d["reasons"]:
            lines.append("skipped or failed by reason: " + ", ".join(f"{r} {n}" for r, n in d["reasons"].items()))
        for label, results in (("skipped", self.skipped), ("failed", self.failed)):
            lines.append(f"{label}: {len(results)}")
            lines += [f"  {q(r.path)}: {_reason(r)}" for r in results]
        dups = self.duplicates
        lines.append(f"duplicate article ids: {len(dups)}")
        lines += [f"  {i}: " + ", ".join(q(p) for p in paths) for i, paths in dups.items()]
        return "\n".join(lines)


def _problem(result: DumpResult) -> dict[str, Any]:
    error = result.error
    return {
        "path": result.path,
        "status": result.status,
        "reason": error.reason if error else None,
        "detail": error.detail if error else None,
    }


def _reason(result: DumpResult) -> str:
    error = result.error
    if error is None:
        return "?"
    return error.reason + (f" ({error.detail})" if error.detail else "")


def _quote(path: str) -> str:
    # JSON quoting shows newlines and trailing spaces in file names.
    return json.dumps(path, ensure_ascii=False)


def result_json(result: DumpResult, *, body: bool = True) -> dict[str, Any]:
    """One output line: the entry's fields, or the path and reason of a file not parsed."""
    if result.entry is None:
        return _problem(result)
    data = {"status": "parsed", **result.entry.to_dict()}
    if not body:
        del data["body_html"]
    return data


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[options] PATH ..."

    def short_desc(self) -> str:
        return "Read feed dumps (files, folders, globs) and print one JSON object per file"

    def long_desc(self) -> str:
        return (
            "Read feed dumps and print one JSON object per file: the parsed entry (status parsed) or the "
            "path, status (skipped or failed) and reason. Folders are read recursively (*.md). With "
            "--summary: counts by kind, every skipped or failed file with its reason, and duplicate "
            "article ids with their files. Exit status 1 when any file failed."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--summary", action="store_true", help="print a summary instead of entries")
        parser.add_argument("--json", action="store_true", help="with --summary: one JSON object")
        parser.add_argument("--no-body", action="store_true", help="leave body_html out of entries")
        parser.add_argument(
            "--max-bytes",
            type=int,
            metavar="N",
            help="largest file read (default: ARCHIVER_DUMP_MAX_BYTES)",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args:
            raise UsageError("name at least one dump file, folder or glob pattern")
        assert self.settings is not None
        max_bytes = opts.max_bytes or int(config.get(self.settings, "ARCHIVER_DUMP_MAX_BYTES"))
        results = iter_dumps(args, max_bytes=max_bytes)
        try:
            failed = self._summary(results, opts.json) if opts.summary else self._lines(results, opts)
        except BrokenPipeError:  # e.g. `| head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        self.exitcode = 1 if failed else 0

    def _lines(self, results: Iterable[DumpResult], opts: argparse.Namespace) -> int:
        failed = 0
        for result in results:
            failed += result.status == "failed"
            _write(json.dumps(result_json(result, body=not opts.no_body), ensure_ascii=False))
        return failed

    def _summary(self, results: Iterable[DumpResult], as_json: bool) -> int:
        summary = Summary()
        for result in results:
            summary.add(result)
        text = json.dumps(summary.to_dict(), ensure_ascii=False, indent=1) if as_json else summary.to_text()
        _write(text)
        return len(summary.failed)


def _write(line: str) -> None:
    # backslashreplace: an undecodable file name (surrogate escape) prints as a JSON \udcXX escape.
    sys.stdout.buffer.write(line.encode("utf-8", "backslashreplace") + b"\n")
