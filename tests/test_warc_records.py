"""The pure record builders: HTTP heads as stored, dates per version, outlinks of DW pages and API JSON."""

from __future__ import annotations

import gzip
import os
import re
import tracemalloc
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archiver.warc.records import (
    BodyTooLarge,
    Exchange,
    PriorCapture,
    api_outlinks,
    build_exchange,
    decode_body,
    html_outlinks,
    http_request_head,
    http_response_head,
    reason_phrase,
    revisit_profile,
    undo_encodings,
    warc_date,
)

SAMPLES = Path(__file__).parent / "data" / "dw-samples"
WHEN = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def exchange(**kw) -> Exchange:
    base = dict(
        url="https://api.dw.com/api/detail/article/1?x=1&y=%20",
        method="GET",
        request_headers=[(b"Accept", b"*/*"), (b"Cookie", b"a=1")],
        request_body=b"",
        protocol="HTTP/1.1",
        status=200,
        response_headers=[
            (b"Set-Cookie", b"a=1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Content-Length", b"999"),
            (b"Set-Cookie", b"b=2"),
        ],
        body=b"hello",
        fetched_at=WHEN,
    )
    return Exchange(**(base | kw))


def test_response_head_keeps_repeats_drops_transfer_encoding_and_rewrites_length():
    head = http_response_head(exchange()).decode()
    assert head == "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\n"
    assert http_response_head(exchange(status=599, protocol="h2")).startswith(b"HTTP/1.1 599 Unknown\r\n")
    assert reason_phrase(304) == "Not Modified"


def test_request_head_has_path_query_and_host_last():
    head = http_request_head(exchange()).decode()
    assert head.startswith("GET /api/detail/article/1?x=1&y=%20 HTTP/1.1\r\n")
    assert head.endswith("Cookie: a=1\r\nHost: api.dw.com\r\n\r\n")
    assert "Host: 127.0.0.1:8080\r\n" in http_request_head(exchange(url="http://127.0.0.1:8080/")).decode()


def test_dates_and_profiles_per_version():
    assert warc_date(WHEN, "1.1") == "2024-05-01T12:00:00.123456Z"
    assert warc_date(WHEN, "1.0") == "2024-05-01T12:00:00Z"
    assert (
        revisit_profile("1.0", "server-not-modified") == "http://netpreserve.org/warc/1.0/revisit/server-not-modified"
    )
    prior = PriorCapture("<urn:uuid:1>", "https://x/", "2024-01-01T00:00:00.5Z", "sha1:AAAA")
    recs = build_exchange(exchange(fetched_at=WHEN.replace(microsecond=0)), "1.0", prior, "identical-payload-digest")
    assert recs.response.get("WARC-Refers-To-Date") == "2024-01-01T00:00:00Z"
    assert recs.response.block.endswith(b"\r\n\r\n") and b"hello" not in recs.response.block


def test_outlinks_of_real_dw_samples():
    links = api_outlinks((SAMPLES / "api" / "search-global_languageId-15.json").read_bytes())
    assert "https://api.dw.com/api/detail/article/63026167" in links
    assert len(links) == len(set(links))
    page = max((SAMPLES / "html").glob("*.html"), key=lambda p: p.stat().st_size)
    links = html_outlinks("https://www.dw.com/de/x/a-1", page.read_bytes())
    assert links and all(link.startswith(("http://", "https://")) for link in links)
    inline = b'<p><a href="https://api.dw.com/api/detail/article/2" rel="ArticleRef">x</a></p>'
    assert api_outlinks(b'{"body": [{"text": "' + inline.replace(b'"', b'\\"') + b'"}]}') == [
        "https://api.dw.com/api/detail/article/2"
    ]


def test_decode_body():
    assert decode_body(gzip.compress(b"abc"), ["gzip"]) == b"abc"
    assert decode_body(zlib.compress(b"abc"), ["deflate"]) == b"abc"
    assert decode_body(b"abc", []) == b"abc"
    assert decode_body(b"abc", ["br"]) is None
    assert decode_body(b"not gzip", ["gzip"]) is None


def test_html_outlinks_resolve_as_urljoin_does():
    from urllib.parse import urljoin

    hrefs = ["https://a.b/c?", "http://a.b/x/../y#f", "HTTPS://A.B/c", "//cdn.b/i.jpg", "rel/p?q=1&amp;r=2", "/abs"]
    hrefs += ["/a/./b", "/a/../b/..", "/x;p?q=/./#f", "/.well-known/x", "/", "/a//b", "/a\tb", "/zh/a-1?x=1&amp;y"]
    html = "".join(f'<a href="{h}">x</a><img src="{h}">' for h in hrefs).encode()
    for base in ("https://www.dw.com/zh/x/a-1", "http://127.0.0.1:8000/dir/page", "HTTP://Host/p"):
        expected = list(dict.fromkeys(urljoin(base, h.replace("&amp;", "&")) for h in hrefs))
        assert html_outlinks(base, html) == [u for u in expected if u.startswith(("http://", "https://"))], base


def test_exact_decoding_only_where_scrapy_decodes_the_same_bytes():
    from scrapy.utils.gz import gunzip

    data = os.urandom(50_000).hex().encode()
    body = gzip.compress(data)
    assert undo_encodings(body, ["gzip"], exact=True) == gunzip(body) == data
    assert undo_encodings(zlib.compress(data), ["deflate"], 10**6, exact=True) == data
    assert undo_encodings(zlib.compress(data, wbits=-15), ["deflate"], exact=True) == data
    # Scrapy reads every gzip member, its gunzip no zlib stream, and keeps `identity`: leave those to Scrapy
    assert gunzip(body + body) == data + data
    assert undo_encodings(body + body, ["gzip"], exact=True) is None
    assert undo_encodings(body + body, ["gzip"]) == data  # enough for outlinks
    assert undo_encodings(zlib.compress(data), ["gzip"], exact=True) is None
    assert undo_encodings(body, ["identity", "gzip"], exact=True) is None
    assert undo_encodings(body[:-100], ["gzip"], exact=True) is None
    assert undo_encodings(body, ["br"], exact=True) is None


def _zeros_compressed(size: int, wbits: int) -> bytes:
    """`size` NUL bytes compressed (wbits 31: gzip, 15: zlib, -15: raw deflate), never held whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunks = [compressor.compress(bytes(1024 * 1024)) for _ in range(size // (1024 * 1024))]
    return b"".join([*chunks, compressor.flush()])


def test_decode_body_stops_at_max_size_without_inflating_a_bomb():
    bomb = _zeros_compressed(64 * 1024 * 1024, 31)
    tracemalloc.start()
    try:
        assert decode_body(bomb, ["gzip"], max_size=1024 * 1024) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, f"held {peak} bytes while decoding"  # the limit and one step, not 64 MB
    with pytest.raises(BodyTooLarge):
        undo_encodings(bomb, ["x-gzip"], max_size=1024 * 1024)
    for wbits in (15, -15):
        assert decode_body(_zeros_compressed(4 * 1024 * 1024, wbits), ["deflate"], max_size=1024 * 1024) is None


def test_decode_body_within_max_size_is_unchanged():
    # many decoding steps; compressible, as Scrapy also limits each encoding's output (a stacked one included)
    data = os.urandom(1_600_003).hex().encode()
    for encodings, body in [
        (["gzip"], gzip.compress(data)),
        (["deflate"], zlib.compress(data)),
        (["deflate"], zlib.compress(data, wbits=-15)),
        (["identity", "deflate", " GZIP "], gzip.compress(zlib.compress(data))),  # last applied, first undone
    ]:
        assert decode_body(body, encodings, max_size=len(data)) == data, encodings
        assert decode_body(body, encodings, max_size=len(data) - 1) is None, encodings
        assert decode_body(body, encodings, max_size=0) == data  # 0, as in DOWNLOAD_MAXSIZE: no limit
    assert decode_body(b"abc", [], max_size=2) is None
    assert undo_encodings(b"abc", ["br"], max_size=10) is None  # cannot decode: None, not BodyTooLarge
    cut = gzip.compress(data)[:-4096]
    partial = decode_body(cut, ["gzip"], max_size=len(data))
    assert partial and data.startswith(partial)  # a cut stream gives what it holds, as without a limit


GOLDEN = Path(__file__).parent / "data" / "warc-golden"


def golden_groups(version: str) -> list[list]:
    """Record groups covering every kind archiver writes: encoded, binary, POST, h2, IPv6, truncated, revisits."""
    import random

    from archiver.warc.records import build_conversion, build_metadata, provenance_fields

    html = ("<html><body>德国之声" + random.Random(1).randbytes(3000).hex() + "</body></html>").encode()
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20
    when = WHEN
    page_headers = [
        (b"Content-Type", b"text/html; charset=utf-8"),
        (b"Set-Cookie", b"a=1; Path=/"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Content-Length", b"999"),
        (b"Set-Cookie", b"b=2; Path=/"),
        (b"X-Name", b"caf\xe9 \xff"),
        (b"Content-Encoding", b"gzip"),
    ]
    page_request = [(b"Accept", b"*/*"), (b"Accept-Encoding", b"gzip, deflate"), (b"Host", b"x"), (b"Cookie", b"a=1")]
    page_url = "https://www.dw.com/zh/x/a-1?x=1&y=%20"
    exchanges = [
        Exchange(
            page_url, "GET", page_request, b"", "HTTP/1.1", 200, page_headers, gzip.compress(html, mtime=0), when,
            "203.0.113.5",
        ),
        Exchange(
            "http://127.0.0.1:8080/api/post", "POST",
            [(b"Content-Type", b"application/json"), (b"Content-Length", b"13")], b'{"q": "\xc3\xa4"}', "h2", 201,
            [(b"Content-Type", b"application/json")], b'{"ok": true}', when, "::1",
        ),
        Exchange(
            "https://api.dw.com/api/detail/article/2", "GET", [(b"Accept", b"*/*")], b"", None, 200,
            [(b"Content-Type", b"application/json")], b'{"type": "x"', when, None, "disconnect",
        ),
        Exchange(
            "https://static.dw.com/image/1_302.jpg", "GET", [(b"Accept", b"image/*")], b"", "HTTP/1.0", 200,
            [(b"Content-Type", b"image/jpeg")], jpeg, when, "198.51.100.1",
        ),
        Exchange("http://[2001:db8::1]:8443/p", "GET", [], b"", "HTTP/1.1", 599, [], b"", when),
    ]  # fmt: skip
    captures = [build_exchange(e, version) for e in exchanges]
    prior = PriorCapture(
        "<urn:uuid:00000000-0000-0000-0000-0000000000aa>", page_url, "2024-01-01T00:00:00.500000Z", "sha1:" + "A" * 32
    )
    captures.append(build_exchange(exchanges[0], version, prior, "identical-payload-digest"))
    not_modified = Exchange(
        page_url, "GET", [(b"If-None-Match", b'"v1"')], b"", "HTTP/1.1", 304, [(b"ETag", b'"v1"')], b"", when,
        "203.0.113.5",
    )  # fmt: skip
    no_digest = PriorCapture(prior.record_id, prior.url, prior.fetched_at, None)
    captures.append(build_exchange(not_modified, version, no_digest, "server-not-modified"))
    captures.append(build_exchange(not_modified, version, prior, "server-not-modified"))
    meta = {"article_id": 1, "role": "page", "via": None, "hop": 0}
    meta["dumps"] = [{"file": "d/1.md", "feed_time": "2024-05-01T00:00:00Z", "title": "标题\n二"}]
    groups = []
    for recs in captures:
        fields = provenance_fields(meta, ["https://a.b/1", "https://a.b/2"])
        url = recs.response.get("WARC-Target-URI")
        metadata = build_metadata(url, recs.response.record_id, fields, when, version)
        groups.append([recs.request, recs.response, metadata])
    text = "正文\r\n第二段"
    conversion = build_conversion("https://www.dw.com/zh/x/a-1", captures[0].response.record_id, text, when, version)
    groups.append([conversion])
    return groups


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_every_kind_of_record_is_written_byte_for_byte_as_before(tmp_path, monkeypatch, version):
    """The records as archiver's own writer wrote them before it was built on warcio (tests/data/warc-golden)."""
    import itertools
    import json
    import uuid

    from archiver.warc.writer import RollingWarcWriter

    ids = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(ids)))
    info = [("software", "golden"), ("isPartOf", "run\nx"), ("empty", ""), ("n", 3)]
    writer = RollingWarcWriter(tmp_path, prefix="golden", version=version, warcinfo_fields=lambda: info)
    written = [w for group in golden_groups(version) for w in writer.write(group)]
    path = writer.close()
    data = gzip.decompress(path.read_bytes())
    golden = (GOLDEN / f"records-{version}.warc").read_bytes()
    first = f"WARC/{version}\r\nWARC-Type: request\r\n".encode()
    assert data[data.index(first) :] == golden[golden.index(first) :]
    # the warcinfo record differs only in its date, file name and (so) block digest
    varying = re.compile(rb"(WARC-Date|WARC-Filename|WARC-Block-Digest): [^\r]*")
    assert varying.sub(b"", data[: data.index(first)]) == varying.sub(b"", golden[: golden.index(first)])
    members = json.loads((GOLDEN / "members.json").read_text())
    if members["zlib"] == zlib.ZLIB_RUNTIME_VERSION:  # compressed sizes depend on zlib's version
        assert [[w.record_type, w.length] for w in written] == members[version]
    with open(path, "rb") as f:
        for w in written:
            f.seek(w.offset)
            assert zlib.decompressobj(31).decompress(f.read(w.length)).startswith(f"WARC/{version}\r\n".encode())
