"""The main job end to end: `scrapy crawl feeddump` against the DW stand-in, read back from its output."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from crawl_support import DUMPS, FAST, ROOT, CrawlRun, run_crawl, subset
from jsonschema import Draft202012Validator
from scrapy.http import HtmlResponse
from warc_support import fetch, running_wayback, undo_encoding
from warcio.archiveiterator import ArchiveIterator

from archiver.dw.dumps import iter_dumps
from archiver.items.model import item_schema
from archiver.spiders.feeddump import encoding_error
from archiver.standin.assets import assets
from archiver.standin.content import render_api, render_page
from archiver.standin.corpus import Corpus
from archiver.state.store import State

DW_IDS = Counter(r.entry.article_id for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw)
WITH_IMAGES = {r.entry.article_id for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw and r.entry.images}


@pytest.fixture(scope="module")
def tldextract_cache(tmp_path_factory) -> Path:
    """An empty tldextract cache, as on a fresh machine: no public suffix list cached yet."""
    return tmp_path_factory.mktemp("tldextract-cache")


@pytest.fixture(scope="module")
def first(standin, tmp_path_factory, tldextract_cache) -> CrawlRun:
    run = run_crawl(tmp_path_factory.mktemp("first"), standin, extra_env={"TLDEXTRACT_CACHE": str(tldextract_cache)})
    assert run.returncode == 0, run.log[-4000:]
    return run


def articles(items: list[dict]) -> list[dict]:
    return [i for i in items if i["kind"] != "reference"]


def test_every_dw_article_has_exactly_one_item(first):
    ids = Counter(i["article_id"] for i in articles(first.items()))
    assert set(ids) == set(DW_IDS)
    assert set(ids.values()) == {1}
    assert len(DW_IDS) == 192 and sum(DW_IDS.values()) == 198  # 6 dumps repeat an id: counted, not refetched
    assert first.report()["dumps"]["duplicate"] == 6
    retitled = next(i for i in first.items() if i["article_id"] == 54237399)  # 获释后首发声 许章润, three dumps
    assert len(retitled["feed"]) == 3
    assert {f["title"] for f in retitled["feed"]} == {"获释后首发声 许章润：极权必败", "获释后首发声 许章润:极权必败"}


def test_every_item_matches_the_schema_and_is_plain_unicode(first):
    validator = Draft202012Validator(item_schema())
    items = first.items()
    for item in items:
        problems = [e.message for e in validator.iter_errors(item)]
        assert not problems, (item["article_id"], problems)
    raw = next((first.out / "items").glob("*.jsonl")).read_text("utf-8")
    assert "\\u" not in raw and "德国之声" in raw
    assert {i["status"] for i in items} == {"complete"}
    assert all(i["text"] for i in articles(items) if i["kind"] != "empty")


def test_cited_articles_have_reference_items(first):
    items = first.items()
    dump_ids = {i["article_id"] for i in articles(items)}
    refs = {i["article_id"]: i for i in items if i["kind"] == "reference"}
    cited = {r for i in articles(items) for r in i["references"]}
    assert cited - dump_ids == set(refs)  # depth 1: every cited id that is no dump article, and nothing more
    assert all(refs[r]["depth"] == 1 and refs[r]["via"] in dump_ids and refs[r]["api_text"] for r in refs)


def test_report_accounts_for_every_input_file(first):
    files = sum(len(names) for _, _, names in os.walk(DUMPS))
    dumps = first.report()["dumps"]
    assert dumps["read"] + dumps["duplicate"] + dumps["skipped"] + dumps["failed"] == files == 210
    listed = {Path(f["path"]).name: f["reason"] for f in dumps["files"]}
    assert listed["MANIFEST.tsv"] == "not a .md file"
    assert listed["SOURCE.md"] == "not a feed dump"
    assert sum(1 for r in listed.values() if r == "not a DW article") == 10


def test_captures_point_at_their_warc_records(first):
    captures = [c for i in first.items() for c in i["captures"]]
    assert Counter(c["role"] for c in captures).keys() == {"page", "api", "image"}
    for capture in captures[::7]:
        with open(first.out / "warc" / capture["warc_file"], "rb") as f:
            f.seek(capture["offset"])
            piece = f.read(capture["length"])
        records = list(ArchiveIterator(io.BytesIO(piece)))  # the slice is that one record, whole
        assert len(records) == 1
        headers = records[0].rec_headers
        assert headers.get_header("WARC-Record-ID") == capture["record_id"]
        assert headers.get_header("WARC-Target-URI") == capture["url"]
        assert headers.get_header("WARC-Payload-Digest") == capture["payload_digest"]


def test_captures_point_at_their_conversion_records_in_the_text_files(first):
    """The extracted text is beside the captures, never among them: a replay tool's latest capture stays the page."""
    converted = [c for i in first.items() for c in i["captures"] if c.get("conversion")]
    assert {c["role"] for c in converted} == {"page", "api"}
    for capture in converted[::11]:
        pointer = capture["conversion"]
        assert pointer["warc_file"].endswith(".warc.wet.gz")
        with open(first.out / "warc" / pointer["warc_file"], "rb") as f:
            f.seek(pointer["offset"])
            (record,) = ArchiveIterator(io.BytesIO(f.read(pointer["length"])))
            headers = record.rec_headers
            assert record.rec_type == "conversion" and headers.get_header("WARC-Record-ID") == pointer["record_id"]
            assert headers.get_header("WARC-Refers-To") == capture["record_id"]
            assert headers.get_header("WARC-Target-URI") == capture["url"]
    for path in first.warc_files():
        with open(path, "rb") as f:
            assert "conversion" not in {r.rec_type for r in ArchiveIterator(f)}


def test_an_offline_crawl_logs_no_traceback(first, tldextract_cache):
    """tldextract (Scrapy's cookie middleware) uses its bundled suffix list instead of trying the internet."""
    assert "Traceback" not in first.log
    assert list(tldextract_cache.rglob("*.json"))  # it did look the suffixes up, from a fresh cache


def test_every_warc_file_passes_warcio_and_our_checks(first):
    text_files = sorted((first.out / "warc").glob("*.warc.wet.gz"))
    files = [str(p) for p in first.warc_files() + text_files]
    assert text_files and not list((first.out / "warc").glob("*.open"))
    ours = subprocess.run([sys.executable, "-m", "scrapy", "warc-check", *files], capture_output=True, text=True)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    warcio = subprocess.run(["warcio", "check", *files], capture_output=True, text=True)
    assert warcio.returncode == 0, warcio.stdout + warcio.stderr
    assert all(w["ok"] for w in first.report()["warc_files"])


def test_replay_and_packaging_tools_accept_the_archive(first, pywb_bin, tmp_path):
    """cdxj-indexer, pywb (replaying what the stand-in served, byte for byte) and `wacz validate`."""
    files = first.warc_files()
    index = subprocess.run(["cdxj-indexer", *map(str, files)], capture_output=True, text=True)
    assert index.returncode == 0, index.stderr[-2000:]
    indexed = {json.loads(line.split(" ", 2)[2])["url"] for line in index.stdout.splitlines()}
    assert {c["url"] for i in first.items() for c in i["captures"]} <= indexed

    corpus = Corpus.from_entries(r.entry for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw)
    served_assets = {f"https://{host}{path}": a.body for (host, path), a in assets().items()}
    with running_wayback(pywb_bin, first.out / "warc", tmp_path) as wayback:
        replayed = 0
        for item in first.items():
            article = corpus.get(item["article_id"])
            for c in item["captures"]:
                if c["role"] == "image" or c["status"] != 200:
                    continue
                served = (render_page if c["role"] == "page" else render_api)(article, corpus.get).encode("utf-8")
                # no timestamp: the latest capture, what a reader gets by default (never the extracted text)
                status, headers, body = fetch(f"{wayback}/id_/{c['url']}")
                assert status == 200 and undo_encoding(headers, body) == served, c["url"]
                replayed += 1
        for url, body in served_assets.items():  # the page requisites, as the stand-in served them
            status, headers, replayed_body = fetch(f"{wayback}/id_/{url}")
            assert status == 200 and undo_encoding(headers, replayed_body) == body, url
    assert replayed == 192 + 192 + 68  # every page and API capture of the run

    wacz = tmp_path / "run.wacz"
    run_id = first.report()["run_id"]
    packed = subprocess.run(
        [sys.executable, "-m", "scrapy", "wacz", "--run", run_id, "--output-dir", str(first.out), "-o", str(wacz)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert packed.returncode == 0 and "validate passed" in packed.stdout, packed.stdout + packed.stderr
    every = subprocess.run(
        [sys.executable, "-m", "scrapy", "wacz", "--all", "--output-dir", str(first.out), "-o", str(wacz)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert every.returncode == 0 and f"{len(files)} WARC files" in every.stdout, every.stdout + every.stderr


SOME = sorted(DW_IDS)[:12]
MORE = sorted(DW_IDS)[12:20]


def test_reruns_do_only_new_work_and_recheck_with_revisits(standin, tmp_path):
    out = tmp_path / "out"
    folder = subset(tmp_path, SOME)
    one = run_crawl(out, standin, folder)
    assert {i["article_id"] for i in articles(one.items())} == set(SOME)

    subset(tmp_path, MORE)  # new dumps arrive in the mirror
    two = run_crawl(out, standin, folder)
    assert two.returncode == 0, two.log[-3000:]
    assert {i["article_id"] for i in articles(two.items())} == set(MORE)
    assert two.report()["dumps"]["read"] == len(MORE)
    assert two.report()["dumps"]["skipped"] == len(SOME)  # unchanged since the first run: not even read

    three = run_crawl(out, standin, folder, settings={"ARCHIVER_RECHECK_AFTER": "0"})
    assert three.returncode == 0
    assert three.items() == []  # nothing changed: no new item versions
    report = three.report()
    assert report["articles"]["unchanged"] == len(SOME) + len(MORE)
    newest = max(three.warc_files(), key=os.path.getmtime)
    with open(newest, "rb") as f:
        types = Counter(r.rec_type for r in ArchiveIterator(f))
    assert types["response"] == 0 and types["revisit"] == types["request"] > 0


def test_a_recheck_whose_page_is_unchanged_but_api_changed_keeps_the_page_text(standin_factory, tmp_path):
    article_id = SOME[3]
    api_changes = standin_factory(faults=f"{article_id}@api:changes")  # a new API revision on every visit
    folder = subset(tmp_path, [article_id])
    (first,) = articles(run_crawl(tmp_path / "out", api_changes, folder).items())
    assert first["text"]
    run = run_crawl(tmp_path / "out", api_changes, folder, settings={"ARCHIVER_RECHECK_AFTER": "0"})
    assert run.returncode == 0, run.log[-3000:]
    (second,) = articles(run.items())
    statuses = {c["role"]: (c["status"], c["record_type"]) for c in second["captures"] if c["role"] != "image"}
    assert statuses == {"page": (304, "revisit"), "api": (200, "response")}
    # the new version's text is read from the page capture the 304 confirms, not left out
    assert second["status"] == "complete" and second["errors"] == []
    assert second["text"] == first["text"] and second["api_text"] != first["api_text"]


def test_fault_modes_end_as_recorded_errors_and_are_retried(standin_factory, standin, tmp_path):
    gone, broken_api = SOME[0], SOME[1]
    broken_image = next(i for i in SOME[2:] if i in WITH_IMAGES)
    faulty = standin_factory(faults=f"{gone}@page:404,{broken_api}@api:500,*@image:503")
    chosen = [gone, broken_api, broken_image]
    folder = subset(tmp_path, chosen)
    fast_fail = {"RETRY_TIMES": "0", "ARCHIVER_FAILURE_BACKOFF": "0"}
    run = run_crawl(tmp_path / "out", faulty, folder, settings=fast_fail)
    assert run.returncode == 0 and "Traceback" not in run.log
    items = {i["article_id"]: i for i in articles(run.items())}
    assert set(items) == set(chosen)  # every article accounted for, none lost
    assert items[gone]["status"] == "partial"  # API still archived; page 404 recorded
    assert {"reason": "HTTP 404", "url": items[gone]["url"]} in items[gone]["errors"]
    assert any(e["reason"] == "HTTP 500" for e in items[broken_api]["errors"])
    image_errors = [e for e in items[broken_image]["errors"] if "/image/" in e["url"]]
    assert image_errors and all(e["reason"] == "HTTP 503" for e in image_errors)
    failures = {f["article_id"] for f in run.report()["failures"]}
    assert {gone, broken_api, broken_image} <= failures
    with State.open(tmp_path / "out" / "state.sqlite3") as state:
        assert state.get_article(gone).errors

    healthy = run_crawl(tmp_path / "out", standin, folder, settings={"ARCHIVER_RECHECK_AFTER": "0"})
    fixed = {i["article_id"]: i for i in articles(healthy.items())}
    assert fixed[gone]["status"] == fixed[broken_api]["status"] == fixed[broken_image]["status"] == "complete"


def test_readme_main_command_runs_offline_on_the_bundled_sample(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "feeddump", "-s", "ARCHIVER_STANDIN=1",
         "-s", f"ARCHIVER_OUTPUT_DIR={tmp_path}", *[f"-s{k}={v}" for k, v in FAST.items()],
         "-s", "ARCHIVER_PROGRESS_INTERVAL=0.2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = CrawlRun(tmp_path, proc.returncode, proc.stderr)
    sample = ROOT / "archiver" / "data" / "sample-dumps"
    expected = {r.entry.article_id for r in iter_dumps([sample]) if r.entry}
    got = [i for i in articles(run.items())]
    assert {i["article_id"] for i in got} == expected and len(got) == len(expected)
    assert {i["status"] for i in got} == {"complete"}
    files = len(list(sample.iterdir()))
    assert f"progress: dumps read {files}, articles " in proc.stderr  # a steady progress line while it runs


def test_arguments_limit_media_refs_depth_and_feed_time_window(standin, tmp_path):
    folder = subset(tmp_path, SOME)
    times = {r.entry.article_id: r.entry.feed_time for r in iter_dumps([folder]) if r.entry}
    limited = run_crawl(tmp_path / "a", standin, folder, args={"limit": 3, "media": 0, "refs_depth": 0})
    items = limited.items()
    assert len(items) == 3 and all(i["kind"] != "reference" for i in items)
    assert not [c for i in items for c in i["captures"] if c["role"] == "image"]
    assert limited.report()["dumps"]["skipped"] == len(SOME) - 3  # over the limit: left for a later run

    ordered = sorted(times.values())
    since, until = ordered[3], ordered[8]
    window = run_crawl(
        tmp_path / "b", standin, folder, args={"since": since.isoformat(), "until": until.isoformat(), "refs_depth": 0}
    )
    expected = {i for i, t in times.items() if since <= t < until}
    assert {i["article_id"] for i in window.items()} == expected and expected


@pytest.mark.parametrize("kill_after_items", [1, 60])
def test_kill_9_loses_nothing_and_duplicates_nothing(standin, tmp_path, kill_after_items):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump", "-a", f"dumps={DUMPS}"]
    for key, value in (FAST | standin.scrapy_settings() | {"ARCHIVER_OUTPUT_DIR": str(out)}).items():
        cmd += ["-s", f"{key}={value}"]
    victim = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    items_dir = out / "items"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        lines = sum(f.read_bytes().count(b"\n") for f in items_dir.glob("*.jsonl")) if items_dir.exists() else 0
        if lines >= kill_after_items:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the crawl ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert list((out / "warc").glob("*.open"))  # it died with a WARC file open

    again = run_crawl(out, standin)
    assert again.returncode == 0, again.log[-3000:]
    everything = again.items(latest_only=False)
    ids = Counter(i["article_id"] for i in articles(everything))
    assert set(ids) == set(DW_IDS) and set(ids.values()) == {1}  # nothing lost, nothing twice
    assert not list((out / "warc").glob("*.open"))  # recovered and closed
    check = subprocess.run(
        [sys.executable, "-m", "scrapy", "warc-check", *map(str, again.warc_files())], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout[-3000:]


PAGE_HTML = "<html><head><title>德国之声</title></head><body><p>柏林{}</p></body></html>"


@pytest.mark.parametrize("text_first", [False, True], ids=["body only", "text decoded first"])
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (PAGE_HTML.format("").encode("utf-8"), "text/html; charset=utf-8", None),
        # a real U+FFFD in a valid body is no replacement: still valid
        (PAGE_HTML.format("\ufffd").encode("utf-8"), "text/html; charset=utf-8", None),
        (PAGE_HTML.format("").encode("gb18030"), "text/html; charset=utf-8", "encoding: body is not valid utf-8"),
        (PAGE_HTML.format("").encode("gb18030"), "text/html; charset=gbk", None),
        (PAGE_HTML.format("").encode("utf-8")[:-20] + b"\xe5\x9f", "text/html", None),  # nothing declared
    ],
    ids=["valid", "valid with U+FFFD", "gb18030 as utf-8", "gb18030 as gbk", "undeclared"],
)
def test_encoding_error_names_a_body_invalid_in_its_declared_charset(body, content_type, expected, text_first):
    response = HtmlResponse("https://www.dw.com/zh/x/a-1", body=body, headers={"Content-Type": content_type})
    if text_first:
        assert response.text  # as Scrapy's MetaRefreshMiddleware does before the callback
    error = encoding_error(response, "page")
    assert error == expected if expected is None else error.startswith(expected), error
