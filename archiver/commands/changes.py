"""`scrapy changes`: what rechecks found in the archive (edits, removals, moves, restorations), newest first."""

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
from archiver.run.changelog import Replay, atom_feed, collect, feed_id_for, html_page, text_lines
from archiver.run.changes import CHANGE_KINDS, HISTORY_KINDS
from archiver.run.plan import parse_time
from archiver.state.store import State
from archiver.timefmt import now_iso


def _kinds(value: str | None) -> list[str]:
    kinds = [k.strip() for k in (value or "").split(",") if k.strip()] or list(CHANGE_KINDS)
    unknown = [k for k in kinds if k not in HISTORY_KINDS]
    if unknown:
        raise UsageError(f"--kind: unknown {', '.join(unknown)} (known: {', '.join(HISTORY_KINDS)})")
    return kinds


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return (
            "[--since ISO] [--until ISO] [--kind edited,removed,...] [--article ID] [--json] [--html OUT] [--atom OUT]"
        )

    def short_desc(self) -> str:
        return "List the edits, removals, moves and restorations that rechecks found, with diffs"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--output-dir", help="archiver output folder (default ARCHIVER_OUTPUT_DIR)")
        parser.add_argument("--since", help="only changes found at or after this ISO date(-time), UTC by default")
        parser.add_argument("--until", help="only changes found before this ISO date(-time)")
        parser.add_argument("--kind", help=f"comma-separated kinds (default {','.join(CHANGE_KINDS)}; also `new`)")
        parser.add_argument("--article", type=int, help="only this article id")
        parser.add_argument("--json", action="store_true", help="one JSON object a line")
        parser.add_argument("--html", metavar="OUT.html", help="also write one self-contained HTML page")
        parser.add_argument("--atom", metavar="OUT.xml", help="also write an Atom 1.0 feed of the changes")
        parser.add_argument("--atom-self", metavar="URL", help="the URL the Atom feed will be served at")
        parser.add_argument("--replay", help="pywb collection prefix for links (default ARCHIVER_REPLAY_PREFIX)")
        parser.add_argument("--wacz", help="URL of a WACZ of the archive: adds ReplayWeb.page links")
        parser.add_argument("--colour", choices=("auto", "always", "never"), default="auto")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}")
        assert self.settings is not None
        output = Path(opts.output_dir) if opts.output_dir else config.output_dir(self.settings)
        state_path = config.state_path(self.settings, output)
        if not state_path.exists():
            print(f"no state at {state_path}: nothing archived there yet", file=sys.stderr)
            self.exitcode = 1
            return
        try:
            since, until = parse_time(opts.since), parse_time(opts.until)
        except ValueError as exc:
            raise UsageError(f"--since/--until: {exc}") from None
        replay = Replay(pywb=opts.replay or str(config.get(self.settings, "ARCHIVER_REPLAY_PREFIX")), wacz=opts.wacz)
        with State.open(state_path) as state:
            entries = collect(
                state,
                output,
                since=since.timestamp() if since else None,
                until=until.timestamp() if until else None,
                kinds=_kinds(opts.kind),
                article_id=opts.article,
            )
        colour = opts.colour == "always" or (opts.colour == "auto" and sys.stdout.isatty() and not opts.json)
        try:
            self._print(entries, replay, as_json=opts.json, colour=colour)
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        generated = now_iso()
        if opts.html:
            _write(opts.html, html_page(entries, replay, generated=generated))
        if opts.atom:
            feed = atom_feed(entries, replay, feed_id=feed_id_for(output), generated=generated, self_url=opts.atom_self)
            _write(opts.atom, feed)
        if not entries and not opts.json:
            print("no changes found", file=sys.stderr)

    @staticmethod
    def _print(entries: list[Any], replay: Replay, *, as_json: bool, colour: bool) -> None:
        out = sys.stdout
        for entry in entries:
            if as_json:
                out.write(json.dumps(entry.as_json(replay), ensure_ascii=False) + "\n")
            else:
                for line in text_lines(entry, colour=colour):
                    out.write(line + "\n")
        out.flush()
