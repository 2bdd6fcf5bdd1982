"""Shared fixtures: the DW stand-in in a subprocess, and a Scrapy probe run routed to it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DUMPS = TESTS / "data" / "feed-dumps"
PROBE_SPIDER = TESTS / "standin_probe_spider.py"

# What every probe run needs besides the routing: no project settings, nothing listening, quick failures.
PROBE_SETTINGS = {
    "LOG_LEVEL": "INFO",
    "TELNETCONSOLE_ENABLED": "False",
    "REMOTE_CONTROL_ENABLED": "False",
    "ROBOTSTXT_OBEY": "False",
    "RETRY_ENABLED": "False",
    "COOKIES_ENABLED": "False",
    "DOWNLOAD_TIMEOUT": "15",
    "CONCURRENT_REQUESTS": "16",
}


@dataclass
class RunningStandin:
    """A `python -m archiver.standin` subprocess and where it listens."""

    info: dict
    process: subprocess.Popen
    stderr: IO[str]

    @property
    def address(self) -> str:
        return self.info["address"]

    @property
    def https_port(self) -> int:
        return int(self.info["https"].rsplit(":", 1)[1])

    @property
    def http_port(self) -> int:
        return int(self.info["http"].rsplit(":", 1)[1])

    @property
    def ca_cert(self) -> str:
        return self.info["ca_cert"]

    def scrapy_settings(self) -> dict[str, str]:
        """The `-s` settings that route a Scrapy process (CrawlerProcess) to this stand-in."""
        return {
            "TWISTED_DNS_RESOLVER": "archiver.standin.routing.StandinResolver",
            "ARCHIVER_STANDIN_ADDRESS": self.address,
        }

    def verify_env(self) -> dict[str, str]:
        """Environment for a Scrapy run with `DOWNLOAD_VERIFY_CERTIFICATES=True`: trust the stand-in's CA."""
        return {"SSL_CERT_FILE": self.ca_cert}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def start_standin(dumps: list[str] | None = None, faults: str = "", *args: str) -> RunningStandin:
    """Start a stand-in subprocess and wait for its JSON line."""
    cmd = [sys.executable, "-m", "archiver.standin", "--dumps", *(dumps or [str(DUMPS)])]
    if faults:
        cmd += ["--faults", faults]
    cmd += list(args)
    # stderr to a file, not a pipe: nobody reads it while the server runs, and a full pipe would block it.
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the server; closed in stop()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line:
                return RunningStandin(json.loads(line), proc, errors)
        if proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    errors.seek(0)
    raise RuntimeError(f"stand-in did not start: {errors.read()}")


@pytest.fixture(scope="session")
def standin() -> Iterator[RunningStandin]:
    """The stand-in serving tests/data/feed-dumps, for the whole session."""
    running = start_standin()
    yield running
    running.stop()


@pytest.fixture
def standin_factory() -> Iterator[Callable[..., RunningStandin]]:
    """Start stand-ins with given faults/dumps/options: `standin_factory(faults="1:404", extra=["--seed", "3"])`."""
    started: list[RunningStandin] = []

    def start(faults: str = "", dumps: list[str] | None = None, extra: list[str] | None = None) -> RunningStandin:
        running = start_standin(dumps, faults, *(extra or []))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def scrapy_probe(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict]:
    """Run tests/standin_probe_spider.py with `scrapy runspider` in a fresh folder; return its results by name."""

    def run(
        requests: list[dict],
        settings: dict[str, str],
        env: dict[str, str] | None = None,
        args: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> dict:
        tmp_path = tmp_path_factory.mktemp("probe")
        spec, out = tmp_path / "spec.json", tmp_path / "out.json"
        spec.write_text(json.dumps(requests), encoding="utf-8")
        cmd = [sys.executable, "-m", "scrapy", "runspider", str(PROBE_SPIDER), "-a", f"spec={spec}", "-a", f"out={out}"]
        for key, value in (args or {}).items():
            cmd += ["-a", f"{key}={value}"]
        for key, value in {**PROBE_SETTINGS, **settings}.items():
            cmd += ["-s", f"{key}={value}"]
        run_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        run_env.pop("SCRAPY_SETTINGS_MODULE", None)
        proc = subprocess.run(cmd, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=timeout)
        assert out.exists(), f"probe wrote nothing (rc={proc.returncode}):\n{proc.stderr[-4000:]}"
        results = json.loads(out.read_text(encoding="utf-8"))
        results["_log"] = proc.stderr
        return results

    return run


@pytest.fixture(scope="session")
def pywb_bin() -> Path:
    """The bin folder of a virtualenv with pywb, built once from PyPI and cached by version."""
    from warc_support import pywb_venv

    return pywb_venv()
