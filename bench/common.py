"""Helpers shared by the bench scripts: generated corpora, the stand-in in its own process, RSS, tables, results.

Import as `from bench.common import ...` (run the scripts from the repository root) or put `bench/` on sys.path.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SOURCE_DUMPS = ROOT / "tests" / "data" / "feed-dumps"
PER_FOLDER = 1000  # like the mirrors' per-day folders
FIRST_ID = 90_000_000  # generated article ids: far from the real ids (1e6..7e7) and the stand-in's generated ones

_LINK_ID = re.compile(rb"/a-(\d+)\)")


# --- machine and run context ---


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python, commit and the load average now."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "commit": commit,
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def load1() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


@contextlib.contextmanager
def scratch(prefix: str, keep: bool = False, folder: Path | None = None) -> Iterator[Path]:
    """A temporary folder for one bench run (under `folder` if given): removed at the end unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    try:
        yield path
    finally:
        if keep:
            print(f"kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- generated corpora ---


def source_dumps(source: Path = SOURCE_DUMPS) -> list[bytes]:
    """Raw bytes of every DW article dump below `source` (real dumps: references and images kept as they are)."""
    sys.path.insert(0, str(ROOT))
    from archiver.dw.dumps import iter_dumps

    out = []
    for result in iter_dumps([str(source)]):
        entry = result.entry
        if entry is not None and entry.is_dw and entry.article_id is not None:
            raw = Path(result.path).read_bytes()
            if _LINK_ID.search(raw):
                out.append(raw)
    if not out:
        raise SystemExit(f"no DW dumps below {source}")
    return out


def make_corpus(target: Path, count: int, *, first_id: int = FIRST_ID, source: Path = SOURCE_DUMPS) -> list[int]:
    """Write `count` dumps below `target` (PER_FOLDER per sub-folder): real DW dumps in turn, each with a new id.

    Only the id in the link line (`/a-<id>)`) and the file name change; bodies, references and images are
    the real ones. Returns the article ids written.
    """
    sources = source_dumps(source)
    ids = []
    for i in range(count):
        article_id = first_id + i
        folder = target / f"d{i // PER_FOLDER:05d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        raw = _LINK_ID.sub(f"/a-{article_id})".encode(), sources[i % len(sources)], count=1)
        (folder / f"a-{article_id}.md").write_bytes(raw)
        ids.append(article_id)
    return ids


# --- the stand-in in its own process ---


@dataclass
class StandinProcess:
    """`python -m archiver.standin --dumps ...` in a child process; `address` routes a crawl to it.

    `options`: more stand-in arguments (`--fault-rate 0.05`, ...); `timeout`: seconds to wait for it to listen.
    """

    dumps: Sequence[str | Path]
    seed: int = 0
    options: Sequence[str] = ()
    timeout: float = 600.0
    info: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def __enter__(self) -> StandinProcess:
        cmd = [sys.executable, "-m", "archiver.standin", "--seed", str(self.seed), *self.options]
        cmd += ["--dumps", *map(str, self.dumps)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""  # its first line says where it listens
        if not line:
            self.stop()
            raise RuntimeError(f"the stand-in did not start listening within {self.timeout:g} s")
        self.info = json.loads(line)
        return self

    @property
    def address(self) -> str:
        """The value for `-s ARCHIVER_STANDIN_ADDRESS=`."""
        return self.info["address"]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- RSS of a process tree ---


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (extraction workers; the forkserver and its child that index and check WARCs)."""
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def scrapy_elapsed(log: str) -> float | None:
    """Scrapy's own crawl time (spider opened to spider closed) from the stats a crawl logs at its end."""
    m = re.search(r"'elapsed_time_seconds': ([0-9.]+)", log)
    return float(m.group(1)) if m else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """Resident set size of one process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Sample the summed RSS of a process tree every `interval` s; `peak_mb`, `samples` (t, MB, MB of root).

    Also keeps the last CPU seconds seen of every process of the tree (`cpu`: root vs the rest).
    """

    def __init__(self, pid: int, interval: float = 0.5, log: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.log = pid, interval, log
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        self.samples: list[tuple[float, float, float]] = []
        self.peak_kb = self.peak_root_kb = 0
        self.cpu: dict[int, float] = {}
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = tree_pids(self.pid)
            sizes = {p: rss_kb(p) for p in pids}
            for p in pids:
                self.cpu[p] = max(self.cpu.get(p, 0.0), cpu_seconds(p))
            total, root = sum(sizes.values()), sizes.get(self.pid, 0)
            if total:
                self.peak_kb = max(self.peak_kb, total)
                self.peak_root_kb = max(self.peak_root_kb, root)
                self.samples.append((round(time.monotonic() - self._t0, 1), total / 1024, root / 1024))
                if self.log is not None:  # survives a killed bench
                    with self.log.open("a") as fh:
                        fh.write("{},{:.1f},{:.1f}\n".format(*self.samples[-1]))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._halt.set()
        self.join()

    @property
    def cpu_root(self) -> float:
        """CPU seconds of the root process (as last sampled)."""
        return round(self.cpu.get(self.pid, 0.0), 1)

    @property
    def cpu_children(self) -> float:
        """CPU seconds of every other process of the tree (extraction workers, WARC index and check)."""
        return round(sum(v for p, v in self.cpu.items() if p != self.pid), 1)

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)

    @property
    def peak_root_mb(self) -> float:
        return round(self.peak_root_kb / 1024, 1)


# --- output ---


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain text table (also valid Markdown) of dict rows."""
    rows = list(rows)
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.1f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join([line, sep, *body])


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` (with the machine added) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"bench": name, "machine": machine(), **data}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return path
