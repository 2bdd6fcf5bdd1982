"""A crawl probe for the benches: how busy each host's download slot was, and how late the event loop ran.

`HostProbe` (a Scrapy extension) samples the downloader's slots every 0.2 s and times a 10 ms asyncio timer; at
close it writes `BENCH_PROBE_FILE` (JSON). `HostProbeAddon` adds it to a project's EXTENSIONS without replacing
them: `scrapy crawl ... -s 'ADDONS={"bench.hostprobe.HostProbeAddon": 0}' -s BENCH_PROBE_FILE=out.json`.
A host whose slot is always full (transferring at the per-host limit, requests queued) bounds the crawl; the
time per request there is what the crawl's speed follows (Little's law: transferring / requests per second).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

SAMPLE_SECONDS = 0.2
TIMER_SECONDS = 0.01


class HostProbe:
    """Per-host slot occupancy and event-loop lag of one crawl, written to `BENCH_PROBE_FILE` at close."""

    def __init__(self, crawler: Crawler, path: Path) -> None:
        self.crawler = crawler
        self.path = path
        self.samples = 0
        self.occupancy: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # host -> [transferring, queued] sums
        self.requests: dict[str, int] = defaultdict(int)
        self.lags: list[float] = []
        self.started = 0.0
        self.running = False
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)
        crawler.signals.connect(self.downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostProbe:
        path = crawler.settings.get("BENCH_PROBE_FILE")
        if not path:
            raise NotConfigured("BENCH_PROBE_FILE is not set")
        return cls(crawler, Path(path))

    def opened(self, spider: Any) -> None:
        self.started = time.monotonic()
        self.running = True
        self.loop = task.LoopingCall(self.sample)
        self.loop.start(SAMPLE_SECONDS, now=False)
        self.timer = asyncio.get_running_loop().create_task(self.time_loop())

    def sample(self) -> None:
        self.samples += 1
        for key, slot in self.crawler.engine.downloader.slots.items():
            counts = self.occupancy[key]
            counts[0] += len(slot.transferring)
            counts[1] += len(slot.queue)

    async def time_loop(self) -> None:
        while self.running:
            start = time.perf_counter()
            await asyncio.sleep(TIMER_SECONDS)
            self.lags.append(time.perf_counter() - start - TIMER_SECONDS)

    def downloaded(self, response: Any, request: Any, spider: Any) -> None:
        self.requests[urlsplit(request.url).hostname or ""] += 1

    def closed(self, spider: Any) -> None:
        self.running = False
        self.loop.stop()
        seconds = time.monotonic() - self.started
        n = max(self.samples, 1)
        hosts = {}
        for host, (transferring, queued) in sorted(self.occupancy.items()):
            rate = self.requests.get(host, 0) / seconds if seconds else 0
            hosts[host] = {
                "requests": self.requests.get(host, 0),
                "transferring": round(transferring / n, 2),
                "queued": round(queued / n, 2),
                "ms_per_request": round(1000 * transferring / n / rate, 1) if rate else None,
            }
        lags = sorted(self.lags) or [0.0]
        self.path.write_text(
            json.dumps(
                {
                    "seconds": round(seconds, 1),
                    "per_host_limit": self.crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
                    "hosts": hosts,
                    "loop_lag_ms": {
                        "mean": round(1000 * sum(lags) / len(lags), 1),
                        "p90": round(1000 * lags[int(0.9 * (len(lags) - 1))], 1),
                        "p99": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1),
                    },
                },
                indent=1,
            )
        )


class HostProbeAddon:
    """Adds HostProbe to EXTENSIONS, keeping the project's own."""

    def update_settings(self, settings: Any) -> None:
        settings["EXTENSIONS"]["bench.hostprobe.HostProbe"] = 990


def probe_settings(path: Path) -> list[str]:
    """The `-s` values that add the probe to one crawl, writing to `path` (beside the project's own add-ons, which
    a command-line ADDONS replaces)."""
    addons = {**project_addons(), "bench.hostprobe.HostProbeAddon": 0}
    return [f"ADDONS={json.dumps(addons)}", f"BENCH_PROBE_FILE={path}"]


def project_addons() -> dict[str, int]:
    """The add-ons of the project profile (settings/default.py)."""
    from settings import default

    return {str(name): int(order) for name, order in default.ADDONS.items()}


def probe_rows(label: str, probe: dict) -> list[dict]:
    """Table rows of one probe file: a row per host."""
    limit = probe["per_host_limit"]
    lag = probe["loop_lag_ms"]
    return [
        {
            "run": label,
            "host": host,
            "requests": h["requests"],
            "transferring": f"{h['transferring']} of {limit}",
            "queued": h["queued"],
            "ms_per_request": h["ms_per_request"],
            "loop_lag_ms_mean_p90": f"{lag['mean']} / {lag['p90']}",
        }
        for host, h in probe["hosts"].items()
    ]
