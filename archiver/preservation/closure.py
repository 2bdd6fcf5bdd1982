"""Closure of a set of WARC files: the files that hold the originals their `revisit` records refer to.

A revisit is replayable only with its original; a hand-off (bag, WACZ) of a later run carries those files too.
Originals are found through the CDXJ index beside each closed WARC file, by URL and capture time (the revisit's
`WARC-Refers-To-Target-URI` and `WARC-Refers-To-Date`), confirmed by record id where several match.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from archiver.warc.cdxj import CDXJ_SUFFIX, cdxj_path, read_cdxj
from archiver.warc.check import iter_gzip_members, parse_record
from archiver.warc.lookup import read_record_at

REVISIT_MIME = "warc/revisit"


@dataclass(frozen=True, slots=True)
class Revisit:
    """A revisit record and what it refers to."""

    warc_file: Path
    offset: int
    target_uri: str
    refers_to: str | None
    refers_to_date: str | None
    digest: str | None


@dataclass(slots=True)
class Closure:
    """The WARC files outside the set that hold originals (with how many revisits each resolves), and the
    revisits whose original is nowhere in the folder."""

    originals: dict[Path, int] = field(default_factory=dict)
    unresolved: list[Revisit] = field(default_factory=list)
    revisits: int = 0


def timestamp14(date: str) -> str:
    """A WARC date as the 14-digit CDXJ timestamp."""
    return "".join(c for c in date if c.isdigit())[:14]


def _revisit(warc: Path, offset: int, headers: dict[str, str]) -> Revisit:
    target = headers.get("WARC-Refers-To-Target-URI") or headers.get("WARC-Target-URI") or ""
    return Revisit(
        warc,
        offset,
        target,
        headers.get("WARC-Refers-To"),
        headers.get("WARC-Refers-To-Date"),
        headers.get("WARC-Payload-Digest"),
    )


def revisits(warc: Path) -> Iterator[Revisit]:
    """The revisit records of a closed WARC file (through its CDXJ index; a full read if it has none)."""
    index = cdxj_path(warc)
    if index.exists():
        for line in read_cdxj(index):
            if line.fields.get("mime") == REVISIT_MIME:
                offset = int(line.fields["offset"])
                try:
                    rec = read_record_at(warc, offset)
                except (ValueError, zlib.error):
                    continue  # a damaged file: its digest no longer matches, which the hand-off reports
                yield _revisit(warc, offset, {k: rec.get(k) for k in _FIELDS if rec.get(k)})
        return
    with open(warc, "rb") as f:
        for raw in iter_gzip_members(f):
            if raw.data is None:
                break
            rec = parse_record(raw.data)
            if rec.get("WARC-Type") == "revisit":
                yield _revisit(warc, raw.offset, {k: rec.get(k) for k in _FIELDS if rec.get(k)})


_FIELDS = (
    "WARC-Refers-To-Target-URI",
    "WARC-Target-URI",
    "WARC-Refers-To",
    "WARC-Refers-To-Date",
    "WARC-Payload-Digest",
)


def _record_id_at(warc: Path, offset: int) -> str | None:
    try:
        return read_record_at(warc, offset).get("WARC-Record-ID")
    except (ValueError, zlib.error):
        return None


def closure(warc_dir: Path, warcs: Iterable[Path]) -> Closure:
    """The files of `warc_dir` that a set of WARC files needs for every revisit in it to resolve."""
    chosen = {Path(w).name for w in warcs}
    found = [r for w in sorted(warcs) for r in revisits(Path(w))]
    result = Closure(revisits=len(found))
    wanted = {r.target_uri for r in found}
    # (url, timestamp) -> [(file, offset, digest)] of every full capture of a wanted URL in the folder
    index: dict[tuple[str, str], list[tuple[str, int, str | None]]] = defaultdict(list)
    for cdxj in sorted(Path(warc_dir).glob(f"*{CDXJ_SUFFIX}")):
        for line in read_cdxj(cdxj):
            f = line.fields
            if f.get("mime") != REVISIT_MIME and line.url in wanted:
                index[(line.url, line.timestamp)].append((f["filename"], int(f["offset"]), f.get("digest")))
    for rev in found:
        candidates = index.get((rev.target_uri, timestamp14(rev.refers_to_date or "")), [])
        if rev.digest:
            candidates = [c for c in candidates if c[2] in (None, rev.digest)]
        if len(candidates) > 1 and rev.refers_to:
            candidates = [c for c in candidates if _record_id_at(Path(warc_dir) / c[0], c[1]) == rev.refers_to]
        if not candidates:
            result.unresolved.append(rev)
            continue
        name = candidates[0][0]
        if name not in chosen:
            path = Path(warc_dir) / name
            result.originals[path] = result.originals.get(path, 0) + 1
    return result
