"""`scrapy crawl`: bad values refused at start (one line, exit 2, nothing written), an unusable output folder
likewise, and a run interrupted hard still writes its report and exits 1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from crawl_support import DUMPS, FAST, ROOT, CrawlRun, run_crawl
from scrapy.settings import Settings

from archiver import config

BAD = [
    ({"ARCHIVER_RECHECK_AFTER": "abc"}, {}, "ARCHIVER_RECHECK_AFTER=abc", "a number"),
    ({"ARCHIVER_WARC_VERSION": "2.0"}, {}, "ARCHIVER_WARC_VERSION=2.0", "one of 1.1, 1.0"),
    ({}, {"refs_depth": "x"}, "refs_depth=x", "a whole number >= 0"),
    ({}, {"since": "notadate"}, "since=notadate", "ISO date"),
    ({}, {"media": "banana"}, "media=banana", "yes/no"),
    ({"ARCHIVER_STATE_SYNCHRONOUS": "BOGUS"}, {}, "ARCHIVER_STATE_SYNCHRONOUS=BOGUS", "one of NORMAL, FULL, EXTRA"),
    ({"ARCHIVER_WARC_MAX_SIZE": "-5"}, {}, "ARCHIVER_WARC_MAX_SIZE=-5", ">= 1"),
    ({"ARCHIVER_EXTRACT_WORKERS": "-1"}, {}, "ARCHIVER_EXTRACT_WORKERS=-1", ">= 0"),
    ({"ARCHIVER_WARC_GZIP_LEVEL": "42"}, {}, "ARCHIVER_WARC_GZIP_LEVEL=42", "from 0 to 9"),
    ({"CONCURRENT_REQUESTS": "0"}, {}, "CONCURRENT_REQUESTS=0", ">= 1"),
    ({}, {"refs_depth": "-1"}, "refs_depth=-1", ">= 0"),
    ({}, {"limit": "-3"}, "limit=-3", ">= 0"),
    ({}, {"since": "2026-02-01", "until": "2026-01-01"}, "since=2026-02-01 is not before until=2026-01-01", "<"),
    ({}, {"dumps": "/nonexistent"}, "dumps=/nonexistent", "not one dump path exists"),
]


def refused(run: CrawlRun) -> list[str]:
    return [line for line in run.log.splitlines() if line.startswith("archiver: refused to start:")]


@pytest.mark.parametrize(("settings", "args", "named", "allowed"), BAD, ids=[b[2] for b in BAD])
def test_bad_values_are_refused_before_anything_is_written(
    standin: Any, tmp_path: Path, settings: dict[str, str], args: dict[str, str], named: str, allowed: str
) -> None:
    out = tmp_path / "out"
    run = run_crawl(out, standin, settings=settings, args=args, timeout=120)
    assert run.returncode == 2, run.log[-2000:]
    lines = refused(run)
    assert len(lines) == 1 and named in lines[0] and allowed in lines[0], lines
    assert "Traceback" not in run.log
    assert not out.exists()  # nothing written


def test_every_registered_setting_validates_its_default() -> None:
    assert config.validate_settings(Settings(config.defaults())) == []
    # A setting without range information is still checked by its default's type.
    plain = config.Setting("ARCHIVER_SOMETHING_NEW", 3, "new")
    assert config.parse_value(plain, "7") == 7
    with pytest.raises(config.BadValue, match="ARCHIVER_SOMETHING_NEW=x is not allowed: expected a whole number"):
        config.parse_value(plain, "x")


def test_unusable_output_folders_are_one_line(standin: Any, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, says in ((a_file, "is not a folder"), (a_file / "below", "is not a folder")):
        run = run_crawl(out, standin, timeout=120)
        assert run.returncode == 2 and "Traceback" not in run.log, run.log[-2000:]
        (line,) = refused(run)
        assert f"ARCHIVER_OUTPUT_DIR={out}" in line and says in line


def test_a_read_only_output_folder_is_one_line(standin: Any, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True)
        if mount.returncode != 0:
            pytest.skip("root cannot be refused by permissions and mounts are not allowed")
    else:
        folder.chmod(0o555)
    try:
        run = run_crawl(folder / "out", standin, timeout=120)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=False)
    assert run.returncode == 2 and "Traceback" not in run.log, run.log[-2000:]
    (line,) = refused(run)
    assert "is not writable" in line


def test_a_second_ctrl_c_still_writes_the_report_and_exits_1(standin: Any, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "scrapy", "crawl", "feeddump", "-a", f"dumps={DUMPS}"]
    for key, value in (FAST | standin.scrapy_settings() | {"ARCHIVER_OUTPUT_DIR": str(tmp_path)}).items():
        cmd += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    log = (tmp_path / "log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "items").glob("*.jsonl")):
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 1
    text = (tmp_path / "log").read_text()
    run = CrawlRun(tmp_path, 1, text)
    report = run.report()
    assert not report["outcome"]["ok"] and report["finish_reason"] in ("killed", "shutdown")
    assert len(re.findall(r"INFO: run \S+ finished \(", text)) == 1  # said once
    assert not list((tmp_path / "reports").glob("*.json.tmp"))
