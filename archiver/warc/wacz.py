"""Package WARC files into a WACZ with py-wacz, pages/pages.jsonl built from the items."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from archiver.warc.cdxj import cdxj_path, read_cdxj
from archiver.warc.check import iter_gzip_members, parse_record
from archiver.warc.lookup import read_record_at

PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


def warcinfo_fields(path: Path) -> dict[str, str]:
    """The fields of a file's warcinfo record (first value of each name)."""
    with open(path, "rb") as f:
        raw = next(iter_gzip_members(f), None)
    if raw is None or raw.data is None:
        return {}
    rec = parse_record(raw.data)
    if rec.get("WARC-Type") != "warcinfo":
        return {}
    fields: dict[str, str] = {}
    for line in rec.block.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def run_warcs(warc_dir: Path, run_id: str) -> list[Path]:
    """The closed capture files of a run (warcinfo `isPartOf`), and the earlier files holding what its revisits
    refer to, so the package replays on its own. Text files are no captures."""
    files = sorted(warc_dir.glob("*.warc.gz"))
    mine = [p for p in files if warcinfo_fields(p).get("isPartOf") == run_id]
    return sorted({*mine, *revisited_files(mine, [p for p in files if p not in mine])})


def revisited_files(warcs: Sequence[Path], others: Sequence[Path]) -> set[Path]:
    """Those of `others` that hold the original captures the revisit records of `warcs` refer to (by their CDXJ)."""
    wanted: set[tuple[str, str]] = set()
    for warc in warcs:
        index = cdxj_path(warc)
        if not index.exists():
            continue
        for line in read_cdxj(index):
            if line.fields.get("mime") == "warc/revisit":
                rec = read_record_at(warc, int(line.fields["offset"]))
                when = "".join(c for c in rec.get("WARC-Refers-To-Date") or "" if c.isdigit())[:14]
                wanted.add((rec.get("WARC-Refers-To-Target-URI") or line.url, when))
    found: set[Path] = set()
    for other in others:
        index = cdxj_path(other)
        if wanted and index.exists() and any((x.url, x.timestamp) in wanted for x in read_cdxj(index)):
            found.add(other)
    return found


def pages_from_items(item_files: Iterable[Path], roles: Sequence[str] = ("page",)) -> list[dict]:
    """One page entry per archived capture of the given roles: id, url, ts (fetch time), the item's title, its
    extracted text (what ReplayWeb.page's full-text search reads) and article id."""
    pages, seen = [], set()
    for path in item_files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                item = json.loads(line)
                for cap in item.get("captures") or []:
                    if cap.get("role") not in roles or not cap.get("record_id"):
                        continue
                    key = (cap["url"], cap.get("fetched_at"))
                    if key in seen:
                        continue
                    seen.add(key)
                    page = {
                        "id": cap["record_id"].strip("<>").removeprefix("urn:uuid:"),
                        "url": cap["url"],
                        "ts": cap.get("fetched_at"),
                        "title": item.get("title") or cap["url"],
                    }
                    text = item.get("text") if cap.get("role") == "page" else item.get("api_text")
                    if text:
                        page["text"] = text
                    if item.get("article_id") is not None:
                        page["article_id"] = item["article_id"]
                    pages.append(page)
    return pages


def latest_run(output: Path) -> str | None:
    """The run id of the newest run report in an output folder, else of the newest capture file."""
    reports = sorted((output / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
    for report in reversed(reports):
        try:
            run_id = json.loads(report.read_text("utf-8")).get("run_id")
        except (OSError, ValueError):
            continue
        if run_id:
            return str(run_id)
    warcs = sorted((output / "warc").glob("*.warc.gz"), key=lambda p: p.stat().st_mtime)
    return warcinfo_fields(warcs[-1]).get("isPartOf") if warcs else None


def write_pages(pages: Iterable[dict], path: Path) -> Path:
    """A pages.jsonl file (header line, then one page per line)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(PAGES_HEADER) + "\n")
        for page in pages:
            f.write(json.dumps(page, ensure_ascii=False) + "\n")
    return path


def create_wacz(warcs: Sequence[Path], output: Path, pages_file: Path | None = None, title: str | None = None) -> str:
    """Run py-wacz `create`; returns its output. Raises RuntimeError if it fails."""
    from wacz.main import main as wacz_main

    args = ["create", "-o", str(output)]
    if pages_file is not None:
        args += ["-p", str(pages_file)]
    if title:
        args += ["--title", title]
    args += [str(w) for w in warcs]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = wacz_main(args)
    if code not in (0, None):
        raise RuntimeError(f"wacz create failed ({code}): {buf.getvalue().strip()}")
    return buf.getvalue()


def validate_wacz(path: Path) -> tuple[bool, str]:
    """Run py-wacz `validate`; (ok, its output)."""
    from wacz.main import main as wacz_main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = wacz_main(["validate", "-f", str(path)])
    return code in (0, None), buf.getvalue()
