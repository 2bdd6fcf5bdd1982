"""The changes found by rechecks, as people read them: lines with diffs, JSON Lines, one HTML page, an Atom feed.

Entries come from the state's history (archiver.state.store `changes`); the texts compared come from the
items files of the runs that wrote the two versions. Links into the archive use the two usual replay forms:
pywb `PREFIX/TIMESTAMP/URL` (a collection served by `wayback`) and ReplayWeb.page
`https://replayweb.page/?source=WACZ#view=pages&url=URL&ts=TIMESTAMP`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from xml.etree import ElementTree as ET

from archiver.dw.textdiff import Hunk, char_spans, sentence_diff, unified
from archiver.items.storage import items_file
from archiver.run.changes import CHANGE_KINDS, EDITED, MOVED, REMOVED, RESTORED
from archiver.state.store import ChangeRow, State
from archiver.timefmt import iso_utc

ATOM = "http://www.w3.org/2005/Atom"
_NON_ASCII_ESCAPES = re.compile(r"(?:%[89A-Fa-f][0-9A-Fa-f])+")
_NAMESPACE = uuid.UUID("5b0cbbd2-8d54-4a43-9d36-6c2a06a1bd4e")


def when(at: float) -> str:
    """A history time as ISO 8601 UTC."""
    return iso_utc(datetime.fromtimestamp(at, UTC).replace(microsecond=0)) or ""


def readable_url(url: str) -> str:
    """The URL as an IRI: percent-escapes of non-ASCII characters decoded (spaces, `#` and the like stay escaped)."""

    def decoded(m: re.Match[str]) -> str:
        try:
            return unquote(m.group(), errors="strict")
        except UnicodeDecodeError:
            return m.group()

    return _NON_ASCII_ESCAPES.sub(decoded, url)


def timestamp14(fetched_at: str) -> str:
    """`2026-12-06T02:54:13.120Z` as a replay timestamp `20261206025413`."""
    return "".join(ch for ch in fetched_at if ch.isdigit())[:14]


@dataclass(frozen=True, slots=True)
class Replay:
    """Where archived captures can be looked at: a pywb collection prefix and, optionally, a WACZ for ReplayWeb.page."""

    pywb: str = "http://localhost:8080/archiver/"
    wacz: str | None = None

    def links(self, capture: dict[str, Any]) -> dict[str, str]:
        """Replay URLs of one capture (its url and fetched_at)."""
        ts, url = timestamp14(capture.get("fetched_at") or ""), capture["url"]
        links = {"pywb": f"{self.pywb.rstrip('/')}/{ts}/{url}"}
        if self.wacz:
            source = quote(self.wacz, safe="")
            links["replayweb"] = f"https://replayweb.page/?source={source}#view=pages&url={quote(url, safe='')}&ts={ts}"
        return links


@dataclass(slots=True)
class ChangeEntry:
    """One change of one article, with the version before it and the texts of both."""

    row: ChangeRow
    previous: ChangeRow | None
    versions: list[ChangeRow] = field(default_factory=list)
    old: dict[str, Any] | None = None  # the previous version's item
    new: dict[str, Any] | None = None  # this version's item

    @property
    def kind(self) -> str:
        return self.row.kind

    @property
    def title(self) -> str:
        """The headline of this version, else of the one before (a removed or moved article shows none)."""
        return self.row.title or (self.previous.title if self.previous else None) or f"article {self.row.article_id}"

    @property
    def url(self) -> str | None:
        return self.row.url or (self.previous.url if self.previous else None)

    def texts(self) -> tuple[str | None, str | None]:
        """The old and new text compared (page text when both items have it, else the API text)."""
        if self.old is None or self.new is None:
            return None, None
        name = "text" if self.old.get("text") and self.new.get("text") else "api_text"
        return self.old.get(name), self.new.get(name)

    def titles(self) -> tuple[str | None, str | None]:
        return (self.previous.title if self.previous else None), self.row.title

    def hunks(self) -> list[Hunk]:
        """The sentence diff of the text (empty when a text is not at hand)."""
        old, new = self.texts()
        return sentence_diff(old, new) if old is not None and new is not None else []

    def as_json(self, replay: Replay | None = None) -> dict[str, Any]:
        """The entry as one object of `scrapy changes --json` (`article_id` and `change` are the contract)."""
        row = self.row
        data: dict[str, Any] = {
            "article_id": row.article_id,
            "change": row.kind,
            "fields": row.fields,
            "version": row.version,
            "time": when(row.at),
            "title": self.title,
            "url": self.url,
            "moved_to": row.moved_to,
            "run_id": row.run_id,
            "captures": [c.get("record_id") for c in row.captures if c.get("record_id")],
            "previous_captures": [c.get("record_id") for c in (self.previous.captures if self.previous else [])],
        }
        old, new = self.texts()
        if row.kind in (EDITED, RESTORED) and old is not None and new is not None:
            data["diff"] = unified(old, new)
        if replay is not None:
            data["replay"] = [replay.links(c) for c in row.captures]
        return data


def _needed_items(entries: Iterable[ChangeEntry]) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {}
    for e in entries:
        if e.kind in (EDITED, RESTORED):
            for row in (e.row, e.previous):
                if row is not None and row.run_id:
                    wanted.setdefault(row.run_id, set()).add(row.article_id)
    return wanted


def _read_items(output_dir: Path, wanted: dict[str, set[int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The items of the wanted (run, article) pairs, reading each run's items file once."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for run_id, ids in wanted.items():
        path = items_file(output_dir, run_id)
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a killed run
                if item.get("article_id") in ids:
                    found[(run_id, item["article_id"])] = item
    return found


def collect(
    state: State,
    output_dir: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    kinds: Iterable[str] = CHANGE_KINDS,
    article_id: int | None = None,
) -> list[ChangeEntry]:
    """The changes in the history, newest first, each with its previous version and (edits) both texts."""
    entries: list[ChangeEntry] = []
    histories: dict[int, list[ChangeRow]] = {}
    for row in state.changes(since=since, until=until, kinds=list(kinds), article_id=article_id):
        history = histories.get(row.article_id)
        if history is None:
            history = histories[row.article_id] = state.article_history(row.article_id)
        before = [r for r in history if r.id < row.id]
        entries.append(ChangeEntry(row, before[-1] if before else None, history))
    items = _read_items(output_dir, _needed_items(entries))
    for e in entries:
        if e.previous is not None and e.previous.run_id:
            e.old = items.get((e.previous.run_id, e.row.article_id))
        if e.row.run_id:
            e.new = items.get((e.row.run_id, e.row.article_id))
    return entries


# --- terminal ---


def text_lines(entry: ChangeEntry, *, colour: bool = False) -> Iterator[str]:
    """One headline per change, then (edits) the title and text diffs by sentence."""
    row = entry.row
    fields = f" [{', '.join(row.fields)}]" if row.fields else ""
    target = f" -> {readable_url(row.moved_to)}" if row.moved_to else ""
    url = readable_url(entry.url or "")
    head = f"{when(row.at)}  {row.kind:<8} {row.article_id}  v{row.version}{fields}  {entry.title}  {url}"
    yield (f"\x1b[1m{head}{target}\x1b[0m" if colour else head + target)
    old_title, new_title = entry.titles()
    if "title" in row.fields and old_title and new_title:
        yield from (f"    {line}" for line in unified(old_title, new_title, context=0, colour=colour))
    old, new = entry.texts()
    if row.kind in (EDITED, RESTORED) and old is not None and new is not None and old != new:
        yield from (f"    {line}" for line in unified(old, new, colour=colour))
    elif row.kind in (EDITED, RESTORED) and "text" in row.fields:
        yield "    (the texts of the two versions are not in the items files)"


# --- HTML ---

_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1b1b1b;line-height:1.6}
h1{font-size:1.5rem}section.change{border-top:1px solid #ccc;padding:1rem 0}
h2{font-size:1.15rem;margin:.2rem 0}.kind{display:inline-block;border-radius:.3rem;padding:0 .5rem;
color:#fff;font-size:.85rem;margin-right:.5rem}
.edited{background:#b26b00}.removed{background:#b00020}.moved{background:#4a4ab0}.restored{background:#1b7f3b}
.meta{color:#555;font-size:.9rem}table.diff{width:100%;border-collapse:collapse;table-layout:fixed;margin:.5rem 0}
table.diff td{vertical-align:top;padding:.25rem .5rem;border:1px solid #e3e3e3;word-break:break-all}
table.diff th{background:#f3f3f3;text-align:left;padding:.25rem .5rem}
td.old{background:#fff5f5}td.new{background:#f4fff4}td.same{color:#666}
del{background:#ffc8c8;text-decoration:line-through}ins{background:#b8f0c0;text-decoration:none}
a{word-break:break-all}ul.versions{margin:.3rem 0;padding-left:1.2rem;font-size:.9rem}
footer{color:#777;font-size:.8rem;margin-top:2rem}
"""


def _spans_html(spans: list[tuple[bool, str]], tag: str) -> str:
    return "".join(f"<{tag}>{escape(text)}</{tag}>" if ch else escape(text) for ch, text in spans)


def diff_table(hunks: list[Hunk], *, context: int = 1) -> str:
    """Side-by-side rows: old sentences left, new right; changed characters marked with <del>/<ins>."""
    rows = []
    for n, hunk in enumerate(hunks):
        if hunk.tag == "equal":
            shown = list(hunk.old)
            if len(shown) > 2 * context:
                head = shown[:context] if n > 0 else []
                tail = shown[-context:] if n < len(hunks) - 1 else []
                rows += [f'<tr><td class="same">{escape(s)}</td><td class="same">{escape(s)}</td></tr>' for s in head]
                rows.append('<tr><td class="same">…</td><td class="same">…</td></tr>')
                shown = tail
            rows += [f'<tr><td class="same">{escape(s)}</td><td class="same">{escape(s)}</td></tr>' for s in shown]
            continue
        for i in range(max(len(hunk.old), len(hunk.new))):
            old = hunk.old[i] if i < len(hunk.old) else None
            new = hunk.new[i] if i < len(hunk.new) else None
            if old is not None and new is not None:
                left, right = char_spans(old, new)
                cells = _spans_html(left, "del"), _spans_html(right, "ins")
            else:
                cells = (f"<del>{escape(old)}</del>" if old else ""), (f"<ins>{escape(new)}</ins>" if new else "")
            rows.append(f'<tr><td class="old">{cells[0]}</td><td class="new">{cells[1]}</td></tr>')
    head = "<tr><th>before</th><th>after</th></tr>"
    return f'<table class="diff">{head}{"".join(rows)}</table>'


def _version_links(entry: ChangeEntry, replay: Replay) -> str:
    items = []
    for version in entry.versions:
        links = []
        for capture in version.captures:
            for name, href in replay.links(capture).items():
                label = f"{capture.get('role')} {capture.get('status')} ({name})"
                links.append(f'<a href="{escape(href)}">{escape(label)}</a>')
        current = " ← this change" if version.id == entry.row.id else ""
        items.append(
            f"<li>v{version.version} {escape(version.kind)} {escape(when(version.at))}: "
            f"{' · '.join(links) or 'no capture'}{current}</li>"
        )
    return f'<ul class="versions">{"".join(items)}</ul>'


def entry_html(entry: ChangeEntry, replay: Replay) -> str:
    """One change as an HTML section (no script, no external asset)."""
    row = entry.row
    url = entry.url or ""
    fields = f" — {escape(', '.join(row.fields))}" if row.fields else ""
    parts = [
        f'<section class="change" id="a{row.article_id}-v{row.version}">',
        f'<h2><span class="kind {escape(row.kind)}">{escape(row.kind)}</span>{escape(entry.title)}</h2>',
        f'<div class="meta">article {row.article_id} · v{row.version} · {escape(when(row.at))}{fields} · '
        f'<a href="{escape(url)}">{escape(readable_url(url))}</a></div>',
    ]
    if row.kind == MOVED and row.moved_to:
        parts.append(f'<p>moved to <a href="{escape(row.moved_to)}">{escape(readable_url(row.moved_to))}</a></p>')
    if row.kind == REMOVED:
        status = next((c.get("status") for c in row.captures if c.get("role") == "page"), None)
        parts.append(f"<p>the article answered {escape(str(status or 'an error'))}: it is no longer online</p>")
    old_title, new_title = entry.titles()
    if "title" in row.fields and old_title and new_title:
        parts.append(diff_table(sentence_diff(old_title, new_title), context=0))
    hunks = entry.hunks()
    if row.kind in (EDITED, RESTORED) and any(h.tag != "equal" for h in hunks):
        parts.append(diff_table(hunks))
    parts.append(_version_links(entry, replay))
    parts.append("</section>")
    return "\n".join(parts)


def html_page(entries: list[ChangeEntry], replay: Replay, *, generated: str) -> str:
    """The whole self-contained page."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no changes"
    body = "\n".join(entry_html(e, replay) for e in entries)
    return (
        '<!doctype html>\n<html lang="zh-Hans"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Changes of archived articles</title><style>{_CSS}</style></head>\n<body>\n"
        f'<h1>Changes of archived articles</h1><p class="meta">{escape(summary)} · generated {escape(generated)}'
        f" · replay: pywb <code>{escape(replay.pywb)}</code></p>\n{body}\n"
        "<footer>archiver · scrapy changes</footer>\n</body></html>\n"
    )


# --- Atom ---


def atom_feed(entries: list[ChangeEntry], replay: Replay, *, feed_id: str, generated: str, self_url: str | None) -> str:
    """An Atom 1.0 feed (RFC 4287) with one entry per change; the entry content is the HTML section."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", feed_id)
    sub(feed, "title", "Changes of archived articles")
    sub(feed, "updated", when(entries[0].row.at) if entries else generated)
    author = sub(feed, "author")
    sub(author, "name", "archiver")
    sub(feed, "generator", "archiver scrapy changes")
    if self_url:
        sub(feed, "link", rel="self", href=self_url)
    for e in entries:
        row = e.row
        entry = sub(feed, "entry")
        key = f"{row.article_id}/{row.version}/{row.kind}/{row.at}"
        sub(entry, "id", f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}")
        sub(entry, "title", f"[{row.kind}] {e.title}")
        sub(entry, "updated", when(row.at))
        if e.url:
            sub(entry, "link", rel="alternate", href=e.url)
        for capture in row.captures[:1]:
            sub(entry, "link", rel="related", href=replay.links(capture)["pywb"], title="archived capture")
        sub(entry, "category", term=row.kind)
        fields = f" ({', '.join(row.fields)})" if row.fields else ""
        sub(entry, "summary", f"article {row.article_id} {row.kind}{fields}, version {row.version}")
        sub(entry, "content", entry_html(e, replay), type="html")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode") + "\n"


def feed_id_for(output_dir: Path) -> str:
    """A stable Atom feed id for one output folder."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, str(output_dir.resolve()))}"
