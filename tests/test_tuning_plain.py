"""Every tweak off (archiver.tuning.SWITCHES, and CONCURRENT_ITEMS at Scrapy's default): the main job gives the same
items and equally valid WARC files as with the tweaks on. Real crawls of the stand-in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from crawl_support import DUMPS, ROOT, CrawlRun, run_crawl

from archiver import config
from archiver.tuning import SWITCHES

PLAIN = {name: "False" for name in SWITCHES} | {"CONCURRENT_ITEMS": "100"}
SAME = ("article_id", "kind", "status", "url", "title", "text", "authors", "references", "text_agreement")


def test_every_switch_is_a_registered_setting_on_by_default_with_its_row_in_the_docs() -> None:
    assert all(config.setting_default(name) is True for name in SWITCHES)
    docs = (ROOT / "docs" / "tuning.md").read_text("utf-8")
    rows = [line for line in docs.splitlines() if line.startswith("| ")]
    assert all(any(f"`{name}`" in row and "| kept |" in row for row in rows) for name in SWITCHES)
    assert "(docs/tuning.md)" in (ROOT / "README.md").read_text("utf-8")


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> Path:
    """A few real dumps, enough for pages, API JSON, images and cited articles."""
    folder = tmp_path_factory.mktemp("dumps")
    for path in sorted(DUMPS.glob("duty-machine-news/**/*.md"))[:6]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def runs(standin, dumps, tmp_path_factory) -> dict[str, CrawlRun]:
    out = {}
    for name, settings in (("tuned", None), ("plain", PLAIN)):
        run = run_crawl(tmp_path_factory.mktemp(name), standin, dumps=dumps, settings=settings)
        assert run.returncode == 0, run.log[-4000:]
        out[name] = run
    return out


def view(run: CrawlRun) -> dict[int, dict]:
    return {i["article_id"]: {k: i.get(k) for k in SAME} | {"captures": len(i["captures"])} for i in run.items()}


def test_the_plain_path_gives_the_same_items(runs) -> None:
    tuned, plain = view(runs["tuned"]), view(runs["plain"])
    assert len(tuned) >= 6 and any(i["text"] for i in tuned.values())
    assert tuned == plain


def test_both_paths_write_warc_files_that_pass_the_checks(runs) -> None:
    for run in runs.values():
        files = run.warc_files()
        assert files and "check passed" in run.log
        own = subprocess.run([sys.executable, "-m", "scrapy", "warc-check", *map(str, files)], capture_output=True)
        assert own.returncode == 0, own.stdout[-2000:]


def test_only_the_tuned_path_takes_the_captures_decoded_bodies(runs) -> None:
    assert "httpcompression/decoded_by_capture" in runs["tuned"].log
    assert "httpcompression/decoded_by_capture" not in runs["plain"].log
