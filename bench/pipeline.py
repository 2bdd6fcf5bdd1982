"""Pipeline vs its bounds: the archiving crawl against bare Scrapy on the same URLs and trafilatura alone.

    python bench/pipeline.py [--articles 5000] [--rounds 1] [--skip-bare] [--skip-extract] [--profile ...] [--probe]

1. pipeline: `scrapy crawl feeddump` (page + API + images + cited articles' API, refs_depth default 1, WARC,
   items, report) on `--articles` generated dumps, the stand-in (`python -m archiver.standin`) in another process;
2. bare Scrapy: a minimal spider fetching exactly the URLs of the pipeline's items (same order, same concurrency,
   headers, robots and timeout settings read from the project profile; no middleware, extension or pipeline of ours,
   only the resolver that routes the DW hosts to the stand-in), callbacks do nothing; run twice: with Scrapy's own
   downloader, and with `archiver.compat.Downloader`, which holds CONCURRENT_REQUESTS_PER_DOMAIN for bursts
   as the pipeline does (Scrapy's lets them through, on new TLS connections): the ratio is printed against each;
3. extraction: `archiver.dw.page.extract_page` over the same article pages (rendered by the stand-in's own code)
   in a ProcessPoolExecutor of os.cpu_count() workers.
AutoThrottle is off in both crawls. Prints a table and writes bench/results/pipeline.json. `--probe` adds
`bench.hostprobe` to every crawl: per host, how full its download slot was and the time per request there, and
how late the event loop ran (the host whose slot stays full is the one the crawl's speed follows).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    RssSampler,
    StandinProcess,
    cpu_seconds,
    load1,
    make_corpus,
    scrapy_elapsed,
    scratch,
    table,
    write_result,
)
from bench.hostprobe import probe_rows, probe_settings

HELD = "archiver.compat.Downloader"
BARE_HELD = "bare Scrapy, per-host limit held"
CRAWL_SETTINGS = {"AUTOTHROTTLE_ENABLED": "False", "ARCHIVER_PROGRESS_INTERVAL": "0", "LOG_LEVEL": "INFO"}
# WARC files of 100 MB: as in a long run, closed files are indexed and checked (in a child process) while the
# crawl goes on, instead of all at once after it, outside the measured time.
STEADY_WARC = ["-s", "ARCHIVER_WARC_MAX_SIZE=100000000"]
# What the bare crawl copies from the project profile so that both crawls fetch alike.
SHARED = (
    "CONCURRENT_REQUESTS",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "CONCURRENT_ITEMS",
    "DEFAULT_REQUEST_HEADERS",
    "USER_AGENT",
    "ROBOTSTXT_OBEY",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_MAXSIZE",
    "DOWNLOAD_WARNSIZE",
    "DOWNLOAD_DELAY",
    "TWISTED_REACTOR",
    "DNSCACHE_ENABLED",
)


def run_pipeline(
    dumps: Path,
    out: Path,
    standin: StandinProcess,
    extra: list[str],
    wrap: list[str] | None = None,
    rss_log: Path | None = None,
    tree: Path = ROOT,
) -> dict:
    """One `scrapy crawl feeddump` in a child process; RSS and CPU of its tree sampled; figures from its report.

    Pages/s are over Scrapy's own crawl time, as for bare Scrapy; `run_seconds` adds start-up and the index and
    check of the last WARC file after the crawl. `tree`: the checkout whose code crawls (another commit's, say).
    """
    address = standin.address
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump", "-a", f"dumps={dumps}"]  # this environment's Scrapy
    settings = {**CRAWL_SETTINGS, "ARCHIVER_STANDIN_ADDRESS": address, "ARCHIVER_OUTPUT_DIR": str(out)}
    for key, value in settings.items():
        cmd += ["-s", f"{key}={value}"]
    cmd += extra
    if wrap:
        cmd = [*wrap, shutil.which("scrapy") or "scrapy", *cmd[3:]]
    out.mkdir(parents=True, exist_ok=True)
    log = out / "crawl.log"
    load = load1()
    standin_cpu = cpu_seconds(standin.proc.pid)
    started = time.perf_counter()
    with log.open("w") as fh:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=fh, stderr=subprocess.STDOUT)
        sampler = RssSampler(proc.pid, log=rss_log)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"pipeline crawl failed ({code}); see {log}")
    report = json.loads(max((out / "reports").glob("*.json"), key=os.path.getmtime).read_text())
    run_span = datetime.fromisoformat(report["finished"]) - datetime.fromisoformat(report["started"])
    run_seconds = run_span.total_seconds()
    seconds = scrapy_elapsed(log.read_text("utf-8", "replace"))
    if seconds is None:
        raise SystemExit(f"pipeline crawl logged no stats; see {log}")
    articles = report["articles"]
    return {
        "run": "pipeline",
        "articles": articles["complete"] + articles["partial"],
        "articles_failed": articles["failed"],
        "references": report["references"]["complete"],
        "requests": report["requests"],
        "bytes": report["bytes"],
        "seconds": round(seconds, 2),
        "run_seconds": round(run_seconds, 2),
        "wall_seconds": round(wall, 2),
        "pages_per_s": round((articles["complete"] + articles["partial"]) / seconds, 1),
        "requests_per_s": round(report["requests"] / seconds, 1),
        "peak_rss_mb": sampler.peak_mb,
        "peak_rss_crawl_mb": sampler.peak_root_mb,
        "rss_curve": rss_curve(sampler.samples),
        "cpu_crawl_s": sampler.cpu_root,
        "cpu_workers_s": sampler.cpu_children,
        "cpu_standin_s": round(cpu_seconds(standin.proc.pid) - standin_cpu, 1),
        "warc_files_ok": all(w["ok"] for w in report["warc_files"]),
        "load_before": load,
        "load_after": load1(),
        "log": str(log),
    }


def rss_curve(samples: list[tuple[float, float, float]], points: int = 10) -> list[list[float]]:
    """About `points` evenly spaced (seconds, tree MB, crawl-process MB) samples, the last one included."""
    if not samples:
        return []
    step = max(1, len(samples) // points)
    picked = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    return [[t, round(tree, 1), round(root, 1)] for t, tree, root in picked]


def profile_summary(folded: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """Shares of the crawl process's py-spy samples (raw/folded format): top self frames, top frames of ours."""
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in folded.read_text("utf-8", "replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if "forkserver" in stack or not count.isdigit():
            continue  # extraction workers: measured on their own by the extraction bound
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]]
        if not frames:
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in dict.fromkeys(f for f in frames if "(archiver/" in f):
            ours[frame] += n
    share = lambda c: [(k, round(100 * v / max(total, 1), 1)) for k, v in c.most_common(top)]  # noqa: E731
    return {"samples": [("crawl process", total)], "self": share(own), "ours_inclusive": share(ours)}


def captured_urls(out: Path) -> list[tuple[str, str]]:
    """(url, role) of every capture named by the run's items, in item order (an image shown twice is fetched twice)."""
    urls = []
    for path in sorted((out / "items").glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                urls.extend((c["url"], c["role"]) for c in json.loads(line)["captures"])
    return urls


def bare_child(urls_file: str, address: str, result_file: str, extra: dict[str, str]) -> None:
    """Child: fetch the URLs with a minimal spider and the project's concurrency settings."""
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess
    from scrapy.http import Response
    from scrapy.utils.project import get_project_settings

    project = get_project_settings()
    urls = [line.split("\t") for line in Path(urls_file).read_text("utf-8").splitlines() if line]
    counts: dict[str, int] = {}

    class Bare(Spider):
        name = "bare"

        async def start(self) -> AsyncIterator[Request]:
            for url, role in urls:
                yield Request(url, callback=self.parse, meta={"role": role}, dont_filter=True)

        def parse(self, response: Response) -> None:
            role = response.meta["role"]
            counts[role] = counts.get(role, 0) + 1

    settings = {key: project[key] for key in SHARED if key in project}
    settings["DEFAULT_REQUEST_HEADERS"] = project.getdict("DEFAULT_REQUEST_HEADERS")
    settings.update(
        {
            "AUTOTHROTTLE_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "EXTENSIONS": {"scrapy.extensions.remote_control.RemoteControl": None},
            "LOG_LEVEL": "INFO",
            "TWISTED_DNS_RESOLVER": "archiver.standin.routing.StandinResolver",
            "ARCHIVER_STANDIN_ADDRESS": address,
            "HTTPERROR_ALLOW_ALL": True,
            **extra,
        }
    )
    process = CrawlerProcess(settings, install_root_handler=True)
    crawler = process.create_crawler(Bare)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats()
    seconds = (stats["finish_time"] - stats["start_time"]).total_seconds()
    Path(result_file).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "counts": counts,
                "requests": stats.get("downloader/request_count", 0),
                "bytes": stats.get("downloader/response_bytes", 0),
                "settings": {k: v for k, v in settings.items() if k != "EXTENSIONS"},
            },
            default=str,
        )
    )


def run_bare(
    urls: list[tuple[str, str]], work: Path, standin: StandinProcess, extra: list[str], label: str = "bare Scrapy"
) -> dict:
    """Bare Scrapy over `urls` in a child process."""
    urls_file, result_file = work / "urls.tsv", work / "bare.json"
    urls_file.write_text("".join(f"{u}\t{r}\n" for u, r in urls), "utf-8")
    load = load1()
    standin_cpu = cpu_seconds(standin.proc.pid)
    started = time.perf_counter()
    with (work / "bare.log").open("w") as fh:
        cmd = [sys.executable, __file__, "--bare-child", str(urls_file), standin.address, str(result_file)]
        cmd += [f"--set={pair}" for pair in extra]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        sampler = RssSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    if code != 0:
        raise SystemExit(f"bare crawl failed ({code}); see {work / 'bare.log'}")
    wall = time.perf_counter() - started
    got = json.loads(result_file.read_text())
    pages = got["counts"].get("page", 0)
    return {
        "run": label,
        "articles": pages,
        "requests": got["requests"],
        "bytes": got["bytes"],
        "seconds": round(got["seconds"], 2),
        "wall_seconds": round(wall, 2),
        "pages_per_s": round(pages / got["seconds"], 1),
        "requests_per_s": round(got["requests"] / got["seconds"], 1),
        "peak_rss_mb": sampler.peak_mb,
        "cpu_crawl_s": sampler.cpu_root,
        "cpu_workers_s": 0.0,
        "cpu_standin_s": round(cpu_seconds(standin.proc.pid) - standin_cpu, 1),
        "load_before": load,
        "load_after": load1(),
        "settings": got["settings"],
    }


def _noop(_: int) -> int:
    import archiver.dw.page  # noqa: F401 - warm the worker's imports

    return 0


def run_extraction(dumps: Path) -> dict:
    """trafilatura alone: extract_page on every article page of the dumps, on os.cpu_count() processes."""
    from archiver.dw.page import extract_page
    from archiver.standin.content import render_page
    from archiver.standin.corpus import Corpus

    corpus = Corpus.from_paths([dumps])
    docs = []
    for article_id in corpus.dump_ids():
        article = corpus.get(article_id)
        if article is not None:
            docs.append((render_page(article, corpus.get).encode("utf-8"), article.page_url))
    workers = os.cpu_count() or 1
    load = load1()
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_noop, range(workers * 2)))
        started = time.perf_counter()
        results = list(pool.map(extract_page, [d[0] for d in docs], [d[1] for d in docs], chunksize=4))
        seconds = time.perf_counter() - started
    assert sum(1 for r in results if r.text) >= 0.9 * len(docs)
    return {
        "run": f"trafilatura alone ({workers} procs)",
        "articles": len(docs),
        "requests": "",
        "bytes": sum(len(d[0]) for d in docs),
        "seconds": round(seconds, 2),
        "wall_seconds": round(seconds, 2),
        "pages_per_s": round(len(docs) / seconds, 1),
        "requests_per_s": "",
        "cpu_workers_s": round(seconds * workers, 1),
        "load_before": load,
        "load_after": load1(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=5000, help="generated articles (default 5000)")
    ap.add_argument("--skip-bare", action="store_true", help="no bare Scrapy run")
    ap.add_argument("--skip-extract", action="store_true", help="no trafilatura-alone run")
    ap.add_argument("--profile", choices=("py-spy", "pyinstrument"), help="profile the pipeline crawl")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="extra setting, both crawls")
    ap.add_argument("--label", default="", help="name of this run in the JSON (e.g. before/after)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder and every crawl's output")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the crawls, interleaved; ratios of the medians")
    ap.add_argument("--probe", action="store_true", help="per-host slot occupancy and event-loop lag of each crawl")
    ap.add_argument("--bare-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_child:
        bare_child(*args.bare_child, dict(pair.split("=", 1) for pair in args.set))
        return

    with scratch("bench-pipeline-", args.keep) as work:
        rows: list[dict[str, Any]] = []
        name = "pipeline" + (f"-{args.label}" if args.label else "")
        dumps = work / "dumps"
        make_corpus(dumps, args.articles)
        wrap = None
        profile_out = None
        if args.profile == "py-spy":
            profile_out = ROOT / "bench" / "results" / f"{name}-profile.folded"
            wrap = [
                "py-spy",
                "record",
                "--format",
                "raw",
                "--subprocesses",
                "-o",
                str(profile_out),
                "--rate",
                "50",
                "--",
            ]
        elif args.profile == "pyinstrument":
            profile_out = ROOT / "bench" / "results" / f"{name}-profile.txt"
            wrap = [sys.executable, "-m", "pyinstrument", "-o", str(profile_out)]
        probes: dict[str, Path] = {}

        def probe(label: str) -> list[str]:
            """Settings that add the host probe to one crawl (none without --probe)."""
            if not args.probe:
                return []
            probes[label] = work / f"probe-{len(probes)}.json"
            return probe_settings(probes[label])

        with StandinProcess([dumps]) as standin:
            for n in range(1, args.rounds + 1):  # the crawls interleaved: a machine that changes speed hits all
                first = n == 1
                sets = [*args.set, *(probe("pipeline") if first else [])]
                extra = [*STEADY_WARC, *(arg for pair in sets for arg in ("-s", pair))]
                out = work / ("out" if first else f"out-{n}")  # a fresh output folder: no state from earlier rounds
                rows.append(run_pipeline(dumps, out, standin, extra, wrap if first else None) | {"round": n})
                if first:
                    urls = captured_urls(out)  # every round fetches the URLs the first one archived
                if not args.keep:  # measured: its ~600 MB of WARC need not sit on the disk under the later crawls
                    shutil.rmtree(out)
                if not args.skip_bare:
                    stock = [*args.set, *(probe("bare Scrapy") if first else [])]
                    rows.append(run_bare(urls, work, standin, stock) | {"round": n})
                    # Scrapy's own downloader lets bursts to one host past CONCURRENT_REQUESTS_PER_DOMAIN (see
                    # archiver/compat.py); bare Scrapy with that fix holds the same per-host limit as the
                    # pipeline.
                    held = [*args.set, f"DOWNLOADER={HELD}", *(probe(BARE_HELD) if first else [])]
                    rows.append(run_bare(urls, work, standin, held, BARE_HELD) | {"round": n})
        if not args.skip_extract:
            rows.append(run_extraction(dumps))
        medians = {
            run: round(statistics.median(r["pages_per_s"] for r in rows if r["run"] == run), 1)
            for run in dict.fromkeys(r["run"] for r in rows)
        }
        pipeline_rate = medians["pipeline"]
        extraction = [rate for run, rate in medians.items() if run.startswith("trafilatura")]
        # Three decimals: a ratio of 0.799 is short of 0.8, and two decimals would print it as 0.8.
        ratios = {
            run: round(pipeline_rate / min([rate, *extraction]), 3)
            for run, rate in medians.items()
            if run.startswith("bare")
        }
        if not ratios and extraction:
            ratios["trafilatura alone"] = round(pipeline_rate / extraction[0], 3)
        per_round = {
            run: [
                round(pipe["pages_per_s"] / min([bare["pages_per_s"], *extraction]), 3)
                for pipe, bare in zip(
                    (r for r in rows if r["run"] == "pipeline"), (r for r in rows if r["run"] == run), strict=True
                )
            ]
            for run in ratios
            if run.startswith("bare")
        }
        ratio = min(ratios.values()) if ratios else None
        columns = [
            "run",
            *(["round"] if args.rounds > 1 else []),
            "articles",
            "requests",
            "seconds",
            "run_seconds",
            "pages_per_s",
            "requests_per_s",
            "cpu_crawl_s",
            "cpu_workers_s",
            "cpu_standin_s",
            "load_before",
        ]
        print(table(rows, columns))
        print(
            f"peak RSS of the crawl's process tree: {max(r['peak_rss_mb'] for r in rows if r['run'] == 'pipeline')} MB;"
            f" WARC checks ok: {all(r['warc_files_ok'] for r in rows if r['run'] == 'pipeline')}"
        )
        if args.rounds > 1:
            print("median pages/s over the rounds: " + ", ".join(f"{run} {rate}" for run, rate in medians.items()))
        for bound, value in ratios.items():
            rounds = f"; round by round {per_round[bound]}" if args.rounds > 1 and bound in per_round else ""
            print(f"ratio pipeline / min({bound}, trafilatura alone) = {value} (target >= 0.8){rounds}")
        print(f"settings: {CRAWL_SETTINGS} in both crawls; profile {rows[1].get('settings') if len(rows) > 1 else ''}")
        probed = {label: json.loads(path.read_text()) for label, path in probes.items() if path.exists()}
        if probed:
            print(table([row for label, data in probed.items() for row in probe_rows(label, data)]))
        summary = profile_summary(profile_out) if args.profile == "py-spy" and profile_out else None
        if summary:
            print(table([{"self time (crawl process)": k, "%": v} for k, v in summary["self"]]))
            print(table([{"our code, inclusive": k, "%": v} for k, v in summary["ours_inclusive"]]))
        path = write_result(
            name,
            {
                "articles": args.articles,
                "rows": rows,
                "rounds": args.rounds,
                "median_pages_per_s": medians,
                "ratio_pipeline_to_min_bound": ratio,
                "ratios": ratios,
                "ratios_per_round": per_round,
                "target": 0.8,
                "profile": str(profile_out) if profile_out else None,
                "profile_summary": summary,
                "urls": len(urls),
                "probes": probed,
            },
        )
        print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
