"""archiver against its peer, q-m's scrapy-webarchive, on the same stand-in crawl: pages/s and validators passed.

    python bench/peer.py [--articles 1000]

One generated corpus, one stand-in process. archiver's pipeline crawls it (bench.pipeline.run_pipeline); bare
Scrapy and scrapy-webarchive (WaczExporter, in its own virtualenv: it pins Scrapy<2.12, see bench/warc.py) then
fetch exactly the URLs of the pipeline's items with the same concurrency settings. The WARC files of both archivers
go through `warcio check`, archiver's `warc-check` (archiver.warc.check), `cdxj-indexer` and WACZ validation.
Prints a table and writes bench/results/peer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    RssSampler,
    StandinProcess,
    load1,
    make_corpus,
    scrapy_elapsed,
    scratch,
    table,
    write_result,
)
from bench.pipeline import CRAWL_SETTINGS, STEADY_WARC, captured_urls, run_bare, run_pipeline
from bench.warc import PEER, tool_venv

# The peer's spider: the URL list, and a resolver that sends the DW hosts to the stand-in (Scrapy 2.11 API).
PEER_SPIDER = """
import json
import os

import scrapy
from scrapy.resolver import CachingHostnameResolver, HostResolution
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHostnameResolver
from zope.interface import implementer

ROUTES = json.loads(os.environ["BENCH_ROUTES"])


@implementer(IHostnameResolver)
class Route(CachingHostnameResolver):
    def resolveHostName(self, receiver, hostName, portNumber=0, addressTypes=None, transportSemantics="TCP"):
        route = ROUTES.get(f"{hostName.lower()}:{portNumber}")
        if route is None:
            return super().resolveHostName(receiver, hostName, portNumber, addressTypes, transportSemantics)
        resolution = HostResolution(hostName)
        receiver.resolutionBegan(resolution)
        receiver.addressResolved(IPv4Address("TCP", route[0], route[1]))
        receiver.resolutionComplete()
        return resolution


class PeerSpider(scrapy.Spider):
    name = "peer"
    custom_settings = {"HTTPERROR_ALLOW_ALL": True}

    def start_requests(self):
        for line in open(self.urls, encoding="utf-8"):
            url, role = line.rstrip("\\n").split("\\t")
            yield scrapy.Request(url, meta={"role": role}, dont_filter=True)

    def parse(self, response):
        pass
"""


def run_peer(urls_file: Path, work: Path, standin: StandinProcess, settings: dict) -> dict:
    """scrapy-webarchive's WaczExporter over the URL list, in its own virtualenv."""
    bin_dir = tool_venv(PEER)
    work.mkdir(parents=True, exist_ok=True)
    (work / "peer_spider.py").write_text(PEER_SPIDER, "utf-8")
    host, ports = standin.address.rsplit(":", 1)
    https, _, http = ports.partition(",")
    routes = {}
    for name in ("www.dw.com", "api.dw.com", "static.dw.com"):
        routes[f"{name}:443"] = [host, int(https)]
        if http:
            routes[f"{name}:80"] = [host, int(http)]
    own = {
        "EXTENSIONS": json.dumps({"scrapy_webarchive.extensions.WaczExporter": 543}),
        "SW_EXPORT_URI": f"file://{work}/peer.wacz",
        "DNS_RESOLVER": "peer_spider.Route",
        "TELNETCONSOLE_ENABLED": "False",
        "AUTOTHROTTLE_ENABLED": "False",
        "LOG_LEVEL": "INFO",
    }
    cmd = [str(bin_dir / "python"), "-m", "scrapy", "runspider", "peer_spider.py", "-a", f"urls={urls_file}"]
    for key, value in {**settings, **own}.items():
        cmd += ["-s", f"{key}={json.dumps(value) if isinstance(value, dict) else value}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"} | {"BENCH_ROUTES": json.dumps(routes)}
    load = load1()
    with (work / "peer.log").open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=work, stdout=fh, stderr=subprocess.STDOUT, env=env)
        sampler = RssSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    log = (work / "peer.log").read_text("utf-8", "replace")
    seconds = scrapy_elapsed(log)
    if code != 0 or seconds is None:
        raise SystemExit(f"peer crawl failed ({code}); see {work / 'peer.log'}:\n{log[-2000:]}")
    requests = int(re.search(r"'downloader/request_count': (\d+)", log).group(1))
    pages = sum(1 for line in urls_file.read_text("utf-8").splitlines() if line.endswith("\tpage"))
    wacz = work / "peer.wacz"
    with zipfile.ZipFile(wacz) as z:
        names = [m for m in z.namelist() if m.startswith("archive/")]
        z.extractall(work / "unz", names)
    return {
        "run": "scrapy-webarchive 0.5.3",
        "articles": pages,
        "requests": requests,
        "seconds": round(seconds, 2),
        "pages_per_s": round(pages / seconds, 1),
        "requests_per_s": round(requests / seconds, 1),
        "peak_rss_mb": sampler.peak_mb,
        "cpu_crawl_s": sampler.cpu_root,
        "load_before": load,
        "warcs": [str(p) for p in sorted((work / "unz" / "archive").glob("*"))],
        "wacz": str(wacz),
    }


def validate(warcs: list[Path], wacz: Path | None) -> dict:
    """warcio check, archiver's warc-check, cdxj-indexer and WACZ validation of a set of WARC files."""
    from cdxj_indexer.main import CDXJIndexer

    from archiver.warc.check import check_file
    from archiver.warc.wacz import validate_wacz

    res: dict = {"warc files": len(warcs)}
    warcio = subprocess.run(["warcio", "check", *map(str, warcs)], capture_output=True, text=True)
    res["warcio check"] = "pass" if warcio.returncode == 0 else f"FAIL: {warcio.stdout[-200:]}"
    problems = [p for w in warcs for p in check_file(w).problems]
    rules: dict[str, int] = {}
    for p in problems:
        rules[p.rule] = rules.get(p.rule, 0) + 1
    res["warc-check"] = "pass" if not problems else "FAIL " + ", ".join(f"{k} x{v}" for k, v in sorted(rules.items()))
    try:
        with tempfile.NamedTemporaryFile("w+") as out:
            CDXJIndexer(output=out.name, inputs=[str(w) for w in warcs], sort=True).process_all()
            lines = len(Path(out.name).read_text().splitlines())
        res["cdxj-indexer"] = f"pass ({lines} lines)"
    except Exception as exc:  # a crash is the finding
        res["cdxj-indexer"] = f"FAIL {exc!r}"[:200]
    if wacz is not None:
        ok, why = validate_wacz(wacz)
        res["wacz validate"] = "pass" if ok else f"FAIL {why}"[:200]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=1000, help="generated articles (default 1000)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()

    from archiver.warc.wacz import create_wacz

    with scratch("bench-peer-", args.keep) as work:
        make_corpus(work / "dumps", args.articles)
        tool_venv(PEER)  # built (once, cached) before any clock runs
        with StandinProcess([work / "dumps"]) as standin:
            ours = run_pipeline(work / "dumps", work / "out", standin, STEADY_WARC)
            urls = captured_urls(work / "out")
            bare = run_bare(urls, work, standin, [])
            peer = run_peer(work / "urls.tsv", work / "peer", standin, bare["settings"])
        our_warcs = sorted((work / "out" / "warc").glob("*.warc.gz"))
        create_wacz(our_warcs, work / "ours.wacz")
        checks = {
            "archiver": validate(our_warcs, work / "ours.wacz"),
            "scrapy-webarchive 0.5.3": validate([Path(p) for p in peer["warcs"]], Path(peer["wacz"])),
        }
        ours["run"] = "archiver pipeline (WARC + extraction + items)"
        rows = [ours, bare, peer]
        cols = ["run", "articles", "requests", "seconds", "pages_per_s", "requests_per_s", "cpu_crawl_s", "load_before"]
        print(table(rows, cols))
        print(f"archiver / scrapy-webarchive pages/s: {ours['pages_per_s'] / peer['pages_per_s']:.2f}")
        vcols = ["tool", "warc files", "warcio check", "warc-check", "cdxj-indexer", "wacz validate"]
        print(table([{"tool": k, **v} for k, v in checks.items()], vcols))
        print(f"settings in all three crawls: {CRAWL_SETTINGS} and {bare['settings']}")
        path = write_result(
            "peer",
            {
                "articles": args.articles,
                "rows": [{k: v for k, v in r.items() if k not in ("warcs", "settings")} for r in rows],
                "validators": checks,
                "ratio_archiver_to_peer": round(ours["pages_per_s"] / peer["pages_per_s"], 2),
                "settings": bare["settings"],
            },
        )
        print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
