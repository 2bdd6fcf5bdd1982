"""Hostile feed dumps: oversized, deeply nested, crowded with links to internal addresses, badly encoded, oddly named.

    python tests/hostile_corpus.py DIR [--port N]

`write_corpus(folder, port)` writes the files and returns what each one is meant to test. Links that must never
be fetched point at `port` on loopback under several spellings (IP literal, `localhost`, IPv6, decimal and
hex forms, userinfo tricks, DW-looking hosts), so a canary server there can prove that nothing reached it.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

FIRST_ID = 990_000_000  # far above DW's ids: never a real article


@dataclass(frozen=True)
class HostileFile:
    """One file of the corpus and the outcome the reader should give it."""

    path: Path
    what: str
    outcome: str  # read | failed | skipped | duplicate (as the run report counts dump files)


def forbidden_urls(port: int) -> list[str]:
    """URLs a crawl must never fetch: loopback, private, link-local, metadata, look-alike and odd schemes."""
    return [
        f"http://127.0.0.1:{port}/canary/ip",
        f"https://127.0.0.1:{port}/canary/ip-tls",
        f"http://localhost:{port}/canary/localhost",
        f"http://[::1]:{port}/canary/ipv6",
        f"http://127.1:{port}/canary/short",
        f"http://2130706433:{port}/canary/decimal",
        f"http://0x7f000001:{port}/canary/hex",
        f"https://static.dw.com@127.0.0.1:{port}/canary/userinfo.jpg",
        f"https://www.dw.com.evil.test:{port}/canary/lookalike",
        f"https://api.dw.com.127.0.0.1.nip.io:{port}/canary/nip",
        f"//127.0.0.1:{port}/canary/protocol-relative.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/canary/private",
        "http://192.168.1.1/canary/private",
        "http://[fe80::1]/canary/link-local",
        f"ftp://127.0.0.1:{port}/canary/ftp",
        f"gopher://127.0.0.1:{port}/_canary",
        "file:///etc/passwd",
        "file://localhost/etc/shadow",
        "javascript:fetch('http://127.0.0.1/canary/js')",
        "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    ]


def dump(article_id: int, title: str, body: str, *, slug: str = "x", feed_ms: int = 1_700_000_000_000) -> str:
    """A feed dump in the mirrors' shape."""
    return f"<!--{feed_ms}-->\n[{title}](https://www.dw.com/zh/{slug}/a-{article_id})\n------\n\n{body}\n"


def _lead() -> str:
    return "<div><i>作者 某某<br>2024-01-02T03:04:05.000Z</i></div>"


def write_corpus(
    folder: Path, port: int, *, huge_bytes: int, refs: int = 3000, images: int = 3000
) -> list[HostileFile]:
    """Write the hostile dumps below `folder`; `huge_bytes` is the size of the file that must be refused."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[HostileFile] = []

    def put(name: str, data: bytes | str, what: str, outcome: str) -> None:
        path = folder / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        files.append(HostileFile(path, what, outcome))

    aid = iter(range(FIRST_ID, FIRST_ID + 1000))
    bad = forbidden_urls(port)

    # size and shape
    filler = "<p>" + "长" * 1000 + "</p>"
    put(
        "huge.md", dump(next(aid), "huge", _lead() + filler * (huge_bytes // 3000 + 1)), "over the size limit", "failed"
    )
    depth = 20_000
    put("nested.md", dump(next(aid), "nested", _lead() + "<div>" * depth + "深" + "</div>" * depth), "nesting", "read")
    ref_links = "".join(
        f'<a href="https://api.dw.com/api/detail/article/{FIRST_ID + 100_000 + i}" rel="ArticleRef">r{i}</a>'
        for i in range(refs)
    )
    put("many-refs.md", dump(next(aid), "refs", _lead() + "<p>" + ref_links + "</p>"), "thousands of refs", "read")
    imgs = "".join(
        f'<div><img src="https://images.weserv.nl/?url=static.dw.com/image/{FIRST_ID + i}_303.jpg"><b>图</b>：{i}</div>'
        for i in range(images)
    )
    put("many-images.md", dump(next(aid), "images", _lead() + imgs), "thousands of images", "read")

    # links, images, videos, refs and iframes that point inside
    anchors = "".join(f'<a href="{u}">a</a><a href="{u}" rel="ExternalRef">e</a>' for u in bad)
    pics = "".join(f'<div><img src="{u}"><b>图</b>：x</div>' for u in bad)
    proxied = "".join(f'<img src="https://images.weserv.nl/?url={u.split("://", 1)[-1]}">' for u in bad)
    media = "".join(f'<video src="{u}"></video><iframe src="{u}"></iframe>' for u in bad)
    sneaky_refs = "".join(f'<a href="{u.rstrip("/")}/a-{FIRST_ID + 500}" rel="ArticleRef">r</a>' for u in bad)
    body = _lead() + f"<p>{anchors}</p>{pics}<p>{proxied}</p>{media}<p>{sneaky_refs}</p>"
    put("internal-links.md", dump(next(aid), "internal", body), "links to internal addresses", "read")
    put(
        "schemes.md",
        dump(
            next(aid), "schemes", _lead() + '<p><a href="javascript:alert(1)">j</a><img src="file:///etc/passwd"></p>'
        ),
        "javascript: and file: URLs",
        "read",
    )
    # a dump whose own link is internal or DW-looking: not a DW article, skipped, never fetched
    for n, link in enumerate(
        [
            f"http://127.0.0.1:{port}/zh/x/a-{FIRST_ID + 900}",
            f"https://www.dw.com.evil.test:{port}/zh/x/a-{FIRST_ID + 901}",
            f"https://www.dw.com@127.0.0.1:{port}/zh/x/a-{FIRST_ID + 902}",
            f"http://localhost:{port}/zh/x/a-{FIRST_ID + 903}",
        ]
    ):
        put(f"link-{n}.md", f"<!--1700000000000-->\n[t]({link})\n------\n\n<p>x</p>\n", "internal dump link", "skipped")

    # names and titles that look like paths, shell words or header injection
    evil_title = "../../../../tmp/pwned $(touch /tmp/pwned) `id` ; rm -rf ~\r\nX-Injected: 1"
    put(
        "traversal.md",
        dump(next(aid), evil_title, _lead() + "<p>t</p>", slug="..%2F..%2Fetc%2Fpasswd/../.."),
        "path title",
        "read",
    )
    put("name\nwith newline.md", dump(next(aid), "nl", _lead() + "<p>n</p>"), "newline in file name", "read")
    put("what?.md", dump(next(aid), "q", _lead() + "<p>q</p>"), "? in file name", "read")
    put("c:colon.md", dump(next(aid), "c", _lead() + "<p>c</p>"), ": in file name", "read")
    put("..dots.md", dump(next(aid), "d", _lead() + "<p>d</p>"), "leading dots (hidden)", "skipped")
    sub = folder / "a" / ".." / "b"
    sub.mkdir(parents=True, exist_ok=True)  # "a/../b" resolves inside the folder
    put("b/inner.md", dump(next(aid), "inner", _lead() + "<p>i</p>"), "nested folder", "read")

    # encodings and bytes
    put(
        "invalid-utf8.md",
        dump(next(aid), "u", "<p>\udcff</p>").encode("utf-8", "surrogateescape"),
        "bad UTF-8",
        "failed",
    )
    put("nul.md", dump(next(aid), "nul", "<p>a\x00b</p>"), "NUL byte", "failed")
    put("bom.md", b"\xef\xbb\xbf" + dump(next(aid), "bom", _lead() + "<p>b</p>").encode(), "UTF-8 BOM", "read")
    put("utf16.md", dump(next(aid), "u16", "<p>w</p>").encode("utf-16"), "UTF-16", "failed")
    put("cr-only.md", dump(next(aid), "cr", _lead() + "<p>r</p>").replace("\n", "\r"), "CR line ends", "read")
    put("empty.md", b"", "empty", "failed")
    put("header-only.md", "<!--1700000000000-->\n[t](https://www.dw.com/zh/x/a-5", "cut header", "failed")
    put("notes.txt", "not a dump", "not .md", "skipped")
    fifo = folder / "fifo.md"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        files.append(HostileFile(fifo, "FIFO", "failed"))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--port", type=int, default=9)
    parser.add_argument("--huge-bytes", type=int, default=11 * 1024 * 1024)
    args = parser.parse_args()
    for f in write_corpus(args.dir, args.port, huge_bytes=args.huge_bytes):
        print(f"{f.outcome:9} {f.what:30} {f.path}")


if __name__ == "__main__":
    main()
