"""Package WARC files into a WACZ with py-wacz, pages/pages.jsonl built from the items."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from archiver.warc.check import iter_gzip_members, parse_record
from archiver.warc.writer import WET_SUFFIX

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
    """The closed capture files of a run (warcinfo `isPartOf`); text files are no captures. The earlier files its
    revisits need are `archiver.preservation.closure`'s to find."""
    return [p for p in sorted(warc_dir.glob("*.warc.gz")) if warcinfo_fields(p).get("isPartOf") == run_id]


def run_text_files(warc_dir: Path, run_id: str) -> list[Path]:
    """The closed text files (`*.warc.wet.gz`, the conversion records its items point at) of a run."""
    return [p for p in sorted(warc_dir.glob(f"*{WET_SUFFIX}")) if warcinfo_fields(p).get("isPartOf") == run_id]


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
