"""Capture middleware end to end: a real Scrapy crawl against a loopback server, then the WARC read back."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cdxj_indexer.main import CDXJIndexer
from warc_support import API, HTML, PATHS, Server, items, run_crawl
from warcio.archiveiterator import ArchiveIterator

from archiver.warc.cdxj import cdxj_path, read_cdxj
from archiver.warc.check import check_file, split_http
from archiver.warc.lookup import read_record_at
from archiver.warc.records import sha1_digest

# The digest index is the state (the default), which is its extension's.
WITH_STATE = {"EXTENSIONS": {"archiver.state.extension.StateExtension": 10}}


def crawl(tmp: Path, settings: dict | None = None) -> tuple[Server, dict]:
    with Server() as server:
        urls = [server.base + p for p in PATHS]
        result = run_crawl(tmp, urls, again=["/etag", "/same"], settings=settings)
    assert result.returncode == 0, result.stderr[-3000:]
    return server, {"base": server.base, "log": result.stderr, "decoded": dict(server.decoded)}


def read_all(warc_dir: Path, pattern: str = "*.warc.gz") -> list:
    out = []
    for path in sorted(warc_dir.glob(pattern)):
        with open(path, "rb") as f:
            it = ArchiveIterator(f)
            for rec in it:
                http = rec.http_headers
                body = rec.content_stream().read() if rec.rec_type != "revisit" else b""
                out.append((path, rec.rec_type, rec.rec_headers, http, body, rec.raw_stream))
    return out


@pytest.fixture(scope="module")
def run11(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warc11")
    _, info = crawl(tmp)
    info["tmp"] = tmp
    info["warc"] = tmp / "out" / "warc"
    return info


def by_type(records, rtype, path=None):
    return [r for r in records if r[1] == rtype and (path is None or r[2].get_header("WARC-Target-URI").endswith(path))]


def test_files_are_named_closed_and_valid_for_every_tool(run11):
    files = sorted(run11["warc"].glob("*.warc.gz"))
    text_files = sorted(run11["warc"].glob("*.warc.wet.gz"))
    assert len(files) == 1 and len(text_files) == 1 and not list(run11["warc"].glob("*.open"))
    assert files[0].name.startswith("archiver-") and files[0].name.endswith(".warc.gz")
    assert not text_files[0].with_name(text_files[0].name + ".cdxj").exists()  # no index: text is no capture
    assert text_files[0].name.startswith("archiver-") and check_file(text_files[0], "1.1").ok
    assert read_all(run11["warc"], "*.warc.wet.gz")[0][1] == "warcinfo"
    warcio = subprocess.run(["warcio", "check", "-v", *map(str, files + text_files)], capture_output=True, text=True)
    assert warcio.returncode == 0, warcio.stdout
    own = subprocess.run(
        [sys.executable, "-m", "scrapy", "warc-check", "--version", "1.1", str(run11["warc"])],
        capture_output=True,
        text=True,
    )
    assert own.returncode == 0, own.stdout
    assert own.stdout.count(": OK,") == 2  # the capture file and the text file
    assert "check passed" in run11["log"]


def test_warcinfo_first_and_describes_the_crawl(run11):
    records = read_all(run11["warc"])
    path, rtype, headers, _, body, _ = records[0]
    assert rtype == "warcinfo"
    assert headers.get_header("WARC-Filename") == path.name
    assert headers.get_header("WARC-Target-URI") is None
    text = body.decode()
    for field in ("software: archiver/", "Scrapy/", "format: WARC File Format 1.1", "hostname:", "robots: ignore"):
        assert field in text
    # the software that really wrote the records: archiver's builders and warcio's writer, at their versions
    from importlib.metadata import version

    import archiver

    assert f"software: archiver/{archiver.__version__} warcio/{version('warcio')} " in text
    assert "setting: DEFAULT_REQUEST_HEADERS={'Accept': '*/*', 'Accept-Encoding': 'gzip, deflate'}" in text
    assert all(r[2].get_header("WARC-Warcinfo-ID") == headers.get_header("WARC-Record-ID") for r in records[1:])


def test_response_record_keeps_the_body_as_received(run11):
    records = read_all(run11["warc"])
    (page,) = by_type(records, "response", "/page")
    http = page[3]
    assert http.statusline == "200 OK" and http.protocol == "HTTP/1.1"
    assert [v for k, v in http.headers if k == "Set-Cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    assert http.get_header("Content-Encoding") == "gzip"
    stored = read_record_at(page[0], int(_offset_of(run11, "/page")))
    payload = split_http(stored.block)[2]
    assert payload == gzip.compress(HTML, mtime=0)  # still content-encoded, exactly as served
    assert http.get_header("Content-Length") == str(len(payload))
    assert page[2].get_header("WARC-Payload-Digest") == sha1_digest(payload)
    assert page[2].get_header("WARC-IP-Address") == "127.0.0.1"
    assert page[2].get_header("WARC-Protocol") == "http/1.1"


def _offset_of(run, path):
    for it in items(run["tmp"]):
        if it["url"].endswith(path) and it["capture"]["record_type"] == "response":
            return it["capture"]["offset"]
    raise AssertionError(path)


def test_chunked_is_stored_dechunked_without_transfer_encoding(run11):
    records = read_all(run11["warc"])
    for path, decoded in (("/chunked", run11["decoded"]["/chunked"]), ("/gzip-chunked", HTML)):
        (rec,) = by_type(records, "response", path)
        http = rec[3]
        assert http.get_header("Transfer-Encoding") is None
        stored = read_record_at(rec[0], _offset_of(run11, path))
        payload = split_http(stored.block)[2]
        assert http.get_header("Content-Length") == str(len(payload))
        body = gzip.decompress(payload) if http.get_header("Content-Encoding") == "gzip" else payload
        assert body == decoded


def test_request_records_pair_with_responses(run11):
    records = read_all(run11["warc"])
    ids = {r[2].get_header("WARC-Record-ID"): r for r in records}
    requests = by_type(records, "request")
    assert len(requests) == 12  # 10 URLs + 2 second fetches
    for req in requests:
        resp = ids[req[2].get_header("WARC-Concurrent-To")]
        assert resp[1] in ("response", "revisit")
        assert resp[2].get_header("WARC-Concurrent-To") == req[2].get_header("WARC-Record-ID")
        assert resp[2].get_header("WARC-Date") == req[2].get_header("WARC-Date")
        assert resp[2].get_header("WARC-Target-URI") == req[2].get_header("WARC-Target-URI")
        assert req[3].headers[-1][0] == "Host"
        assert req[3].get_header("Accept-Encoding") == "gzip, deflate"
    (q,) = by_type(records, "request", "/q?x=1&y=2")
    assert q[3].protocol == "GET" and q[3].statusline.startswith("/q?x=1&y=2 ")
    assert q[3].get_header("Host") == run11["base"].removeprefix("http://")


def test_failed_responses_are_archived_as_what_happened(run11):
    records = read_all(run11["warc"])
    (missing,) = by_type(records, "response", "/missing")
    assert missing[3].statusline == "404 Not Found"
    (loss,) = by_type(records, "response", "/dataloss")
    assert loss[2].get_header("WARC-Truncated") == "disconnect"
    assert loss[3].get_header("Content-Length") == "500"


def test_revisits_refer_to_the_original(run11):
    records = read_all(run11["warc"])
    ids = {r[2].get_header("WARC-Record-ID"): r for r in records}
    (same_rev,) = by_type(records, "revisit", "/same")
    h = same_rev[2]
    assert h.get_header("WARC-Profile") == "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
    assert h.get_header("WARC-Truncated") == "length"
    orig = ids[h.get_header("WARC-Refers-To")]
    assert orig[1] == "response"
    assert h.get_header("WARC-Refers-To-Target-URI") == orig[2].get_header("WARC-Target-URI")
    assert h.get_header("WARC-Refers-To-Date") == orig[2].get_header("WARC-Date")
    assert h.get_header("WARC-Payload-Digest") == orig[2].get_header("WARC-Payload-Digest")

    (etag_rev,) = by_type(records, "revisit", "/etag")
    h = etag_rev[2]
    assert h.get_header("WARC-Profile") == "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
    assert etag_rev[3].statusline == "304 Not Modified"
    orig = ids[h.get_header("WARC-Refers-To")]
    assert orig[3].statusline == "200 OK" and orig[2].get_header("WARC-Target-URI").endswith("/etag")
    assert h.get_header("WARC-Payload-Digest") == orig[2].get_header("WARC-Payload-Digest")


def test_items_name_their_records(run11):
    its = items(run11["tmp"])
    assert len(its) == 10  # 404 and 304 go to the errback
    for it in its:
        cap = it["capture"]
        rec = read_record_at(run11["warc"] / cap["warc_file"], cap["offset"])
        assert rec.get("WARC-Record-ID") == cap["record_id"]
        assert rec.get("WARC-Target-URI") == it["url"]
        assert rec.get("WARC-Type") == cap["record_type"]
        assert rec.get("WARC-Date") == cap["fetched_at"] and cap["fetched_at"].endswith("Z")
        assert rec.get("WARC-Payload-Digest") == cap["payload_digest"]
        with open(run11["warc"] / cap["warc_file"], "rb") as f:
            f.seek(cap["offset"] + cap["length"])
            nxt = f.read(2)
        assert nxt in (b"\x1f\x8b", b"")  # the next gzip member starts right after


def test_spider_gets_bodies_decoded_once_and_exactly(run11):
    """HTML and JSON bodies reach the spider decoded by the capture; other bodies by Scrapy; all as served."""
    import hashlib
    import re

    served = {path: hashlib.sha1(body).hexdigest() for path, body in run11["decoded"].items()}
    checked = 0
    for it in items(run11["tmp"]):
        path = it["url"].removeprefix(run11["base"])
        if it["status"] == 200 and "dataloss" not in it["flags"]:
            assert it["body_sha1"] == served[path], path
            checked += 1
    assert checked == 9
    # decoded: no Content-Encoding left, and the class that the Content-Type names
    decoded = {it["url"].removeprefix(run11["base"]): it for it in items(run11["tmp"]) if it["status"] == 200}
    assert not any(it["content_encoding"] for it in decoded.values())
    assert decoded["/page"]["class"] == "HtmlResponse" and decoded["/api/detail/article/1"]["class"] == "JsonResponse"
    stats = dict(re.findall(r"'(httpcompression/[a-z_]+)': (\d+)", run11["log"]))
    # /page and /gzip-chunked (gzip HTML), the API (deflate JSON); /etag and /same (gzip text) twice are Scrapy's
    assert stats["httpcompression/decoded_by_capture"] == "3"
    assert stats["httpcompression/response_count"] == "6"


def test_metadata_records_carry_provenance_and_outlinks(run11):
    records = read_all(run11["warc"])
    ids = {r[2].get_header("WARC-Record-ID"): r for r in records}
    metas = by_type(records, "metadata")
    assert len(metas) == 12
    for m in metas:
        assert ids[m[2].get_header("WARC-Concurrent-To")][1] in ("response", "revisit")
        assert m[2].get_header("WARC-Payload-Digest") is None
    (page,) = by_type(records, "metadata", "/page")
    text = page[4].decode()
    assert "role: page" in text and "hop: 0" in text
    assert 'dump: {"file": "dumps/a.md", "feed_time": "2023-01-01T00:00:00Z", "title": "标题\\n第二行"}' in text
    assert f"outlink: {run11['base']}/missing" in text
    assert "outlink: https://www.dw.com/zh/x/a-1" in text
    assert f"outlink: {run11['base']}/image.jpg" in text
    (api,) = by_type(records, "metadata", "/api/detail/article/1")
    text = api[4].decode()
    assert "outlink: https://api.dw.com/api/detail/article/2" in text
    assert "outlink: https://api.dw.com/api/detail/article/3" in text
    assert API  # the API body served


def test_conversion_records_refer_to_the_response(run11):
    records = read_all(run11["warc"])
    ids = {r[2].get_header("WARC-Record-ID"): r for r in records}
    assert not by_type(records, "conversion")  # never beside the captures: replay would find them under the URI
    convs = by_type(read_all(run11["warc"], "*.warc.wet.gz"), "conversion")
    assert len(convs) == 2  # /page and /gzip-chunked
    for c in convs:
        assert c[2].get_header("Content-Type") == "text/plain; charset=utf-8"
        assert c[2].get_header("WARC-Concurrent-To") is None
        ref = ids[c[2].get_header("WARC-Refers-To")]
        assert ref[1] == "response"
        assert ref[2].get_header("WARC-Target-URI") == c[2].get_header("WARC-Target-URI")
        assert c[4].decode().startswith("提取的文本 ")


def test_cdxj_index_beside_each_file(run11):
    for path in run11["warc"].glob("*.warc.gz"):
        lines = list(read_cdxj(cdxj_path(path)))
        assert lines == sorted(lines, key=lambda x: (x.surt, x.timestamp))
        urls = [(line.url, line.fields["mime"]) for line in lines]
        assert (run11["base"] + "/page", "text/html") in urls
        assert (run11["base"] + "/same", "warc/revisit") in urls
        assert {line.fields["filename"] for line in lines} == {path.name}
        for line in lines:
            rec = read_record_at(path, int(line.fields["offset"]))
            assert rec.get("WARC-Target-URI") == line.url
        # cdxj-indexer reads every record of the file
        every = path.with_name("all.cdxj")
        CDXJIndexer(output=str(every), inputs=[str(path)], records="all").process_all()
        assert len(every.read_text().splitlines()) == check_file(path).records
        every.unlink()


def test_warc_1_0_whole_seconds_and_1_0_profiles(tmp_path):
    crawl(tmp_path, {"ARCHIVER_WARC_VERSION": "1.0"})
    warc_dir = tmp_path / "out" / "warc"
    (path,) = sorted(warc_dir.glob("*.warc.gz"))
    result = check_file(path, "1.0")
    assert result.ok, [str(p) for p in result.problems]
    records = read_all(warc_dir)
    assert all(r[2].protocol == "WARC/1.0" for r in records)
    assert all(len(r[2].get_header("WARC-Date")) == 20 for r in records)
    profiles = {r[2].get_header("WARC-Profile") for r in by_type(records, "revisit")}
    assert profiles == {
        "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest",
        "http://netpreserve.org/warc/1.0/revisit/server-not-modified",
    }
    assert subprocess.run(["warcio", "check", str(path)], capture_output=True).returncode == 0


def test_revisits_across_runs_through_the_state(tmp_path):
    """With the state as digest index, an unchanged page in a later run is a revisit of the older file's record."""
    out = tmp_path / "out"
    settings = {
        "ARCHIVER_WARC_CAPTURE_INDEX": "archiver.state:capture_index",
        "ARCHIVER_OUTPUT_DIR": str(out),
        "EXTENSIONS": json.dumps(
            {"archiver.warc.extension.WarcWriterExtension": 0, "archiver.state.extension.StateExtension": 10}
        ),
    }
    with Server() as server:
        urls = [server.base + "/same", server.base + "/page"]
        first = run_crawl(tmp_path / "one", urls, settings=settings)
        second = run_crawl(tmp_path / "two", urls, settings=settings)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    older, newer = items(tmp_path / "one"), items(tmp_path / "two")
    assert {it["capture"]["record_type"] for it in older} == {"response"}
    assert {it["capture"]["record_type"] for it in newer} == {"revisit"}
    for it in newer:
        (orig,) = [o for o in older if o["url"] == it["url"]]
        rec = read_record_at(out / "warc" / it["capture"]["warc_file"], it["capture"]["offset"])
        assert it["capture"]["warc_file"] != orig["capture"]["warc_file"]
        assert rec.get("WARC-Refers-To") == orig["capture"]["record_id"]
        assert rec.get("WARC-Refers-To-Date") == orig["capture"]["fetched_at"]
        assert rec.get("WARC-Payload-Digest") == orig["capture"]["payload_digest"]
    for path in (out / "warc").glob("*.warc.gz"):
        assert check_file(path).ok


def test_a_capture_with_nothing_to_tell_gets_no_metadata_record(tmp_path):
    from scrapy.http import Request, TextResponse
    from scrapy.utils.test import get_crawler

    from archiver.warc.extension import WarcWriterExtension

    crawler = get_crawler(settings_dict={"ARCHIVER_OUTPUT_DIR": str(tmp_path), "ARCHIVER_RUN_ID": "t", **WITH_STATE})
    archive = WarcWriterExtension.from_crawler(crawler)
    robots = Request("https://www.dw.com/robots.txt")  # no provenance, no outlinks
    archive.write(archive.prepare(robots, TextResponse(robots.url, body=b"User-agent: *\n", request=robots)))
    page = Request("https://www.dw.com/zh/x/a-1", meta={"archiver": {"article_id": 1, "role": "page", "hop": 0}})
    archive.write(archive.prepare(page, TextResponse(page.url, body=b"<html></html>", request=page)))
    archive.writer.on_close = None  # no index/check process: only the records matter here
    archive.writer.close()
    records = read_all(tmp_path / "warc")
    kinds = [(r[1], r[2].get_header("WARC-Target-URI")) for r in records if r[1] != "warcinfo"]
    assert kinds == [
        ("request", robots.url),
        ("response", robots.url),
        ("request", page.url),
        ("response", page.url),
        ("metadata", page.url),
    ]


def test_two_captures_of_one_payload_prepared_together_still_make_one_revisit(tmp_path):
    """The middleware lets other work run between `prepare` and `write`; the dedupe lookup is in `write`."""
    from scrapy.http import Request, Response
    from scrapy.utils.test import get_crawler

    from archiver.warc.extension import WarcWriterExtension

    crawler = get_crawler(settings_dict={"ARCHIVER_OUTPUT_DIR": str(tmp_path), "ARCHIVER_RUN_ID": "t", **WITH_STATE})
    archive = WarcWriterExtension.from_crawler(crawler)
    image = Request("https://static.dw.com/image/1_302.jpg")
    body = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 200  # a JPEG-looking 51 KB body
    headers = {"Content-Type": "image/jpeg"}
    first, second = (archive.prepare(image, Response(image.url, body=body, headers=headers)) for _ in range(2))
    captured = [archive.write(first), archive.write(second)]
    archive.writer.on_close = None
    archive.writer.close()
    assert [c.location["record_type"] for c in captured] == ["response", "revisit"]
    records = [r for r in read_all(tmp_path / "warc") if r[1] in ("response", "revisit")]
    assert records[1][2].get_header("WARC-Refers-To") == captured[0].location["record_id"]
