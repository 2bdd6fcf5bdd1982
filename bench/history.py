"""Does a run's cost grow with history? A state with N archived articles, then a run that adds 1,000 dumps.

For each history size the state is built (not timed), then one run is simulated in a fresh process:
1,000 new dumps (dump check, claim, two conditional-request lookups, two digest lookups, two captures,
finish, record), 130 duplicate mentions, 1,000 due rechecks (revisits) and 1,000 unchanged-dump checks.
Median and best of --repeat runs, and CPU time (wall time is noisy on a shared machine).
Prints a table, writes bench/results/history.json. Usage: python bench/history.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archiver.state.store import ARCHIVED, CaptureRow, State  # noqa: E402

NEW = 1_000
DUPLICATES = 130  # about 13% of dumps name an article already seen
RECHECKS = 1_000
DAY = 86400.0
T0 = 1_700_000_000.0  # history time; the run happens at T0 + 10 days


def page(aid: int) -> str:
    return f"https://www.dw.com/zh/%E6%A0%87%E9%A2%98/a-{aid}"


def api(aid: int) -> str:
    return f"https://api.dw.com/api/detail/article/{aid}"


def build(path: Path, n: int) -> None:
    """A state with n archived articles (2 captures each) and n dumps; RECHECKS of them due at the run."""
    with State.open(path) as st:
        conn = st._conn
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO articles (article_id, kind, page_url, api_url, status, first_archived, last_checked, "
            "next_check, version, last_run_id, depth, first_seen) VALUES (?, 'article', ?, ?, 'archived', ?, ?, "
            "?, 1, 'history', 0, ?)",
            (
                (aid, page(aid), api(aid), T0, T0, T0 + (DAY if aid % (n // RECHECKS) == 0 else 30 * DAY), T0)
                for aid in range(1, n + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO captures (url, fetched_at, status, payload_digest, record_id, warc_file, \"offset\", "
            "length, etag, last_modified, record_type, run_id) VALUES (?, '2023-11-14T22:13:20.000000Z', 200, ?, "
            "?, ?, ?, 50000, ?, 'Tue, 14 Nov 2023 22:13:20 GMT', 'response', 'history')",
            (
                (url, f"sha1:{kind}{aid}", f"<urn:uuid:{kind}-{aid}>", f"archiver-{aid // 5000:05d}.warc.gz",
                 aid * 1000, f'"{kind}{aid}"')
                for aid in range(1, n + 1)
                for kind, url in (("p", page(aid)), ("a", api(aid)))
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO dumps (path, size, mtime, sha256, outcome, first_seen, last_seen, run_id) "
            "VALUES (?, 4000, ?, ?, 'read', ?, ?, 'history')",
            ((f"/dumps/{aid}.md", T0, f"{aid:064x}", T0, T0) for aid in range(1, n + 1)),
        )
        conn.execute(
            "INSERT INTO runs (run_id, started, finished, outcome) VALUES ('history', ?, ?, 'finished')", (T0, T0)
        )
        conn.execute("COMMIT")


def capture(st: State, url: str, digest: str, run: str, i: int) -> None:
    """What the conditional middleware and the WARC writer ask and record for one exchange."""
    last = st.last_capture(url, statuses=(200, 304))
    original = st.find_by_digest(url, digest)
    st.add_capture(
        CaptureRow(url, f"2023-11-24T22:13:{i % 60:02d}.000000Z", 200, digest, f"<urn:uuid:{run}-{i}-{url[-9:]}>",
                   "archiver-run.warc.gz", i * 1000, 400 if original else 50000,
                   last.etag if last else '"new"', None, "revisit" if original else "response", run)
    )  # fmt: skip


def simulate(path: Path, n: int) -> dict[str, float]:
    """One run at T0 + 10 days: new dumps, duplicates, due rechecks, unchanged dump checks."""
    run, now = "bench", T0 + 10 * DAY
    before = resource.getrusage(resource.RUSAGE_SELF)
    t, cpu = time.perf_counter(), time.process_time()
    with State.open(path) as st:
        st.acquire_run_lock(run)
        st.start_run(run, now)
        for i in range(NEW):  # reading: a dump's claims and its record commit together
            aid, dump = n + 1 + i, f"/dumps/new-{i}.md"
            assert st.dump_changed(dump, 4000, now)
            with st.transaction():
                assert st.claim_article(aid, kind="article", page_url=page(aid), api_url=api(aid), run_id=run,
                                        now=now, recheck_after=DAY).fetch  # fmt: skip
                st.record_dump(dump, 4000, now, f"new{i:061x}", "read", None, run, now=now)
        for i in range(NEW):  # fetching: page and API captured, article finished
            aid = n + 1 + i
            capture(st, page(aid), f"sha1:p{aid}", run, i)
            capture(st, api(aid), f"sha1:a{aid}", run, i)
            st.finish_article(aid, ARCHIVED, run, now, DAY)
        for i in range(DUPLICATES):  # named again in this run, or archived earlier and not due
            aid = n + 1 + i if i % 2 else 1 + (i * 7919) % n
            assert not st.claim_article(aid, run_id=run, now=now, recheck_after=30 * DAY).fetch
        rechecked = 0
        for row in st.due_rechecks(now, RECHECKS):
            assert st.claim_article(row.article_id, run_id=run, now=now, recheck_after=DAY).fetch
            capture(st, row.page_url, f"sha1:p{row.article_id}", run, rechecked)  # unchanged: revisit
            capture(st, row.api_url, f"sha1:a{row.article_id}", run, rechecked)
            st.finish_article(row.article_id, ARCHIVED, run, now, DAY, changed=False)
            rechecked += 1
        assert rechecked == RECHECKS, rechecked
        assert list(st.due_retries(now, 100)) == []
        for aid in range(1, n + 1, max(n // NEW, 1)):  # unchanged dumps met again in the mirror
            assert not st.dump_changed(f"/dumps/{aid}.md", 4000, T0)
        st.finish_run(run, now, "finished", {"new": NEW, "rechecked": rechecked})
        run_s, cpu_s = time.perf_counter() - t, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        for aid in range(1, n + 1):  # every recorded dump checked once (a full rescan of the mirror)
            st.dump_changed(f"/dumps/{aid}.md", 4000, T0)
        rescan_s = time.perf_counter() - t
    return {
        "run_seconds": run_s,
        "run_cpu_seconds": cpu_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_at_start_mb": before.ru_maxrss / 1024,
        "run_blocks_read": after.ru_inblock - before.ru_inblock,
        "run_blocks_written": after.ru_oublock - before.ru_oublock,
        "run_waits": after.ru_nvcsw - before.ru_nvcsw,
        "full_dump_rescan_seconds": rescan_s,
    }


def measure(n: int, workdir: Path, repeat: int) -> dict[str, float]:
    """Build a state of n articles, then simulate the run on fresh copies, each in a fresh process (clean RSS)."""
    built = workdir / f"history-{n}.sqlite3"
    t = time.perf_counter()
    build(built, n)
    build_s = time.perf_counter() - t
    runs = []
    for i in range(repeat):
        path = workdir / f"run-{n}-{i}" / "state.sqlite3"
        path.parent.mkdir()
        shutil.copyfile(built, path)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), str(path)], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout))
    size = sum(f.stat().st_size for f in path.parent.glob("state.sqlite3*"))
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    summary["run_seconds_min"] = min(r["run_seconds"] for r in runs)
    return {"archived": n, "build_seconds": build_s, "state_mb": size / 2**20, "repeat": repeat, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per size (median and best reported)")
    parser.add_argument("--child", nargs=2, metavar=("N", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(simulate(Path(args.child[1]), int(args.child[0]))))
        return
    with tempfile.TemporaryDirectory(prefix="archiver-history-") as tmp:
        rows = [measure(n, Path(tmp), args.repeat) for n in args.sizes]
    small, large = rows[0], rows[-1]
    ratios = {
        "run_time_median": large["run_seconds"] / small["run_seconds"],
        "run_time_min": large["run_seconds_min"] / small["run_seconds_min"],
        "run_cpu": large["run_cpu_seconds"] / small["run_cpu_seconds"],
        "peak_rss": large["peak_rss_mb"] / small["peak_rss_mb"],
    }
    print(f"{'archived':>9} {'state MB':>9} {'run s (median)':>15} {'run s (min)':>12} {'run CPU s':>10} "
          f"{'peak RSS MB':>12} {'rescan all dumps s':>19}")  # fmt: skip
    for r in rows:
        print(
            f"{r['archived']:>9,} {r['state_mb']:>9.1f} {r['run_seconds']:>15.2f} {r['run_seconds_min']:>12.2f} "
            f"{r['run_cpu_seconds']:>10.2f} {r['peak_rss_mb']:>12.1f} {r['full_dump_rescan_seconds']:>19.2f}"
        )
    print(
        f"{large['archived']:,} vs {small['archived']:,}: run time x{ratios['run_time_median']:.2f} median, "
        f"x{ratios['run_time_min']:.2f} best, x{ratios['run_cpu']:.2f} CPU (target <= 1.5); "
        f"peak RSS x{ratios['peak_rss']:.2f} (target <= 1.2)"
    )
    report = {
        "bench": "history",
        "new_dumps": NEW,
        "duplicates": DUPLICATES,
        "rechecks": RECHECKS,
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rows": rows,
        "ratios": ratios,
        "targets": {"run_time": 1.5, "peak_rss": 1.2},
        "pass": ratios["run_time_min"] <= 1.5 and ratios["run_cpu"] <= 1.5 and ratios["peak_rss"] <= 1.2,
    }
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "history.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
