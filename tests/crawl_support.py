"""Run the real main job (`scrapy crawl feeddump`) in a subprocess and read what it wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver.dw.dumps import iter_dumps

ROOT = Path(__file__).resolve().parents[1]
DUMPS = ROOT / "tests" / "data" / "feed-dumps"

# The stand-in is on loopback: no politeness delay to wait out.
FAST = {"AUTOTHROTTLE_START_DELAY": "0", "ARCHIVER_PROGRESS_INTERVAL": "0", "LOG_LEVEL": "INFO"}


@dataclass
class CrawlRun:
    """One finished `scrapy crawl feeddump` and its output folder."""

    out: Path
    returncode: int
    log: str

    def report(self) -> dict[str, Any]:
        """The newest run report."""
        reports = sorted((self.out / "reports").glob("*.json"), key=os.path.getmtime)
        return json.loads(reports[-1].read_text("utf-8"))

    def items(self, latest_only: bool = True) -> list[dict[str, Any]]:
        """Items of the newest run (or of every run)."""
        files = sorted((self.out / "items").glob("*.jsonl"), key=os.path.getmtime)
        files = files[-1:] if latest_only else files
        return [json.loads(line) for f in files for line in f.read_text("utf-8").splitlines()]

    def warc_files(self) -> list[Path]:
        """The closed WARC files of the output folder."""
        return sorted((self.out / "warc").glob("*.warc.gz"))


def run_crawl(
    out: Path,
    standin: Any,
    dumps: str | Path | None = DUMPS,
    settings: dict[str, Any] | None = None,
    args: dict[str, Any] | None = None,
    timeout: float = 300,
    preexec: Any = None,
    extra_env: dict[str, str] | None = None,
) -> CrawlRun:
    """`scrapy crawl feeddump` against a running stand-in (conftest's `standin`), output in `out`."""
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump"]
    spider_args = ({"dumps": str(dumps)} if dumps is not None else {}) | (args or {})
    for key, value in spider_args.items():
        cmd += ["-a", f"{key}={value}"]
    merged = FAST | standin.scrapy_settings() | {"ARCHIVER_OUTPUT_DIR": str(out)} | (settings or {})
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}  # the profile scrapy.cfg names
    env.update(extra_env or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)
    return CrawlRun(out, proc.returncode, proc.stdout + proc.stderr)


def subset(tmp: Path, names: list[int]) -> Path:
    """A dump folder `tmp/dumps` with the dumps of these article ids (first file of each), added to what is there."""
    folder = tmp / "dumps"
    folder.mkdir(exist_ok=True)
    by_id = {r.entry.article_id: Path(r.path) for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw}
    for article_id in names:
        shutil.copy(by_id[int(article_id)], folder / f"{article_id}.md")
    return folder
