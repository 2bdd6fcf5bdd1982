"""Extraction throughput on 1 and 2 worker processes, and page/feed text agreement.

Throughput is measured on the pipeline's own path: `archiver.extraction.pool.ExtractionPool` (the process pool the
spider awaits) fed from an asyncio loop, over the real DW pages in tests/data/dw-samples/html and over the Chinese
pages the stand-in renders from the bundled dumps, each set repeated to at least `--docs` documents.
Agreement is `archiver.dw.textmatch.agreement(page.body, feed body)` for every DW article of the dumps with text.

    python bench/extraction.py [--docs 400] [--rounds 3]

Prints a table and writes bench/results/extraction.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from itertools import cycle, islice
from pathlib import Path

import trafilatura

from archiver.dw.page import extract_page
from archiver.dw.textmatch import agreement, feed_article_text
from archiver.extraction.pool import ExtractionPool

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "dw-samples" / "html"
DUMPS = ROOT / "tests" / "data" / "feed-dumps"
RESULTS = Path(__file__).resolve().parent / "results" / "extraction.json"


def real_pages() -> list[tuple[bytes, str]]:
    """The real DW article pages (both layouts, 38-331 KB)."""
    return [(p.read_bytes(), f"https://www.dw.com/x/{p.stem}") for p in sorted(SAMPLES.glob("*.html"))]


def standin_pages() -> list[tuple[bytes, str, str]]:
    """(page, url, feed body) for every DW article of the bundled dumps, as the stand-in serves it."""
    from archiver.dw.dumps import iter_dumps
    from archiver.standin.content import render_page
    from archiver.standin.corpus import Corpus

    entries = [r.entry for r in iter_dumps([DUMPS]) if r.entry is not None and r.entry.is_dw]
    corpus = Corpus.from_entries(entries)
    first: dict[int, object] = {}
    for entry in entries:
        first.setdefault(entry.article_id, entry)
    out = []
    for article_id, entry in first.items():
        article = corpus.get(article_id)
        out.append((render_page(article, corpus.get).encode("utf-8"), article.page_url, entry.body_html))
    return out


async def _run_pool(extractor: ExtractionPool, docs: list[tuple[bytes, str]]) -> float:
    start = time.perf_counter()
    pages = await asyncio.gather(*(extractor.extract(html, url) for html, url in docs))
    elapsed = time.perf_counter() - start
    assert all(p.text for p in pages)
    return len(docs) / elapsed


def pool_rate(workers: int, docs: list[tuple[bytes, str]]) -> float:
    """Docs/s through an `ExtractionPool` of `workers` processes (started before the clock runs)."""
    extractor = ExtractionPool(workers=workers)

    async def warm_then_time() -> float:
        await _run_pool(extractor, docs[: 2 * workers])  # warm the workers' caches
        return await _run_pool(extractor, docs)

    try:
        extractor.start()
        return asyncio.run(warm_then_time())  # one event loop: the workers' pipes are served by it
    finally:
        extractor.close()


def inline_rate(docs: list[tuple[bytes, str]], func) -> float:
    start = time.perf_counter()
    for html, url in docs:
        func(html, url)
    return len(docs) / (time.perf_counter() - start)


def _default_trafilatura(html: bytes, url: str) -> None:
    trafilatura.extract(html, url=url, output_format="json", with_metadata=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=400, help="documents per measurement (>= 200)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per setting; the best is reported")
    args = parser.parse_args()
    n = max(200, args.docs)

    load_before = os.getloadavg()[0]
    standin = standin_pages()
    sets = {
        "dw-samples (real pages)": list(islice(cycle(real_pages()), n)),
        "stand-in zh pages": list(islice(cycle([(h, u) for h, u, _ in standin]), n)),
    }
    rows = []
    for name, docs in sets.items():
        size = statistics.mean(len(h) for h, _ in docs) / 1024
        runs = {1: [], 2: []}
        for _ in range(args.rounds):
            for workers in (1, 2):
                runs[workers].append(pool_rate(workers, docs))
        one, two = max(runs[1]), max(runs[2])  # best of the rounds: other processes only ever slow a run down
        inline = inline_rate(docs[:100], extract_page)
        default = inline_rate(docs[:50], _default_trafilatura)
        rows.append(
            {
                "set": name,
                "docs": len(docs),
                "mean_kb": round(size, 1),
                "inline_docs_per_s": round(inline, 1),
                "default_trafilatura_json_docs_per_s": round(default, 1),
                "pool_1_docs_per_s": round(one, 1),
                "pool_2_docs_per_s": round(two, 1),
                "speedup_2_vs_1": round(two / one, 2),
                "speedup_median": round(statistics.median(runs[2]) / statistics.median(runs[1]), 2),
                "pool_1_runs": [round(r, 1) for r in runs[1]],
                "pool_2_runs": [round(r, 1) for r in runs[2]],
            }
        )

    body_scores, text_scores = [], []
    for html, url, feed in standin:
        if not feed_article_text(feed):
            continue  # an empty dump: nothing to agree on
        page = extract_page(html, url)
        body_scores.append(agreement(page.body, feed))
        text_scores.append(agreement(page.text, feed))
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "trafilatura": trafilatura.__version__,
        "throughput": rows,
        "agreement": {
            "articles": len(body_scores),
            "mean_body_vs_feed": round(statistics.mean(body_scores), 4),
            "min_body_vs_feed": round(min(body_scores), 4),
            "mean_text_with_lead_vs_feed": round(statistics.mean(text_scores), 4),
            "target": 0.95,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")

    header = f"{'set':26} {'docs':>5} {'KB':>6} {'inline':>7} {'default':>8} {'1 proc':>7} {'2 proc':>7} {'2 vs 1':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['set']:26} {r['docs']:5d} {r['mean_kb']:6.1f} {r['inline_docs_per_s']:7.1f} "
            f"{r['default_trafilatura_json_docs_per_s']:8.1f} {r['pool_1_docs_per_s']:7.1f} "
            f"{r['pool_2_docs_per_s']:7.1f} {r['speedup_2_vs_1']:6.2f}x"
        )
    print("(docs/s; inline = extract_page in this process, default = trafilatura.extract json+metadata)")
    a = result["agreement"]
    print(
        f"agreement page body vs feed body over {a['articles']} articles: mean {a['mean_body_vs_feed']}, "
        f"min {a['min_body_vs_feed']} (with the lead: {a['mean_text_with_lead_vs_feed']}); target {a['target']}"
    )
    load = result["machine"]["load_1min_before_after"]
    print(f"load average (1 min) before/after: {load[0]} / {load[1]} on {os.cpu_count()} CPUs", end="")
    print(" - other processes were using the CPUs: rates and speedup are low bounds" if load[0] > 0.5 else "")
    print(f"written: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
