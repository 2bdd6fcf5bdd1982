"""CDXJ index beside each closed WARC file, written by cdxj-indexer (the pywb/py-wacz indexer)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cdxj_indexer.main import CDXJIndexer

CDXJ_SUFFIX = ".cdxj"


def cdxj_path(warc_path: Path) -> Path:
    """The index file of a WARC: `<name>.warc.gz.cdxj`."""
    return warc_path.with_name(warc_path.name + CDXJ_SUFFIX)


def write_cdxj(warc_path: Path) -> Path:
    """Index a WARC file (sorted, pywb-compatible) into `<name>.warc.gz.cdxj`; returns the index path."""
    warc_path = Path(warc_path)
    out = cdxj_path(warc_path)
    tmp = out.with_name(out.name + ".tmp")
    CDXJIndexer(output=str(tmp), inputs=[str(warc_path)], sort=True).process_all()
    os.replace(tmp, out)
    return out


@dataclass(frozen=True, slots=True)
class CdxjLine:
    """One parsed CDXJ line."""

    surt: str
    timestamp: str
    fields: dict

    @property
    def url(self) -> str:
        return self.fields.get("url", "")


def read_cdxj(path: Path) -> Iterator[CdxjLine]:
    """The lines of a CDXJ file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("!"):
                continue
            key, ts, data = line.split(" ", 2)
            yield CdxjLine(key, ts, json.loads(data))
