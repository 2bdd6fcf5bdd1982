"""Every ARCHIVER_* setting in one place: name, default and meaning.

Components read their settings through `get()`, so a project that does not start from
`settings.default` still gets these defaults. README's settings table is generated from here
(`python -m archiver.config`) and a test keeps the two in step.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

DW_HOSTS = ("www.dw.com", "api.dw.com", "static.dw.com")


@dataclass(frozen=True, slots=True)
class Setting:
    """One ARCHIVER_* setting."""

    name: str
    default: Any
    doc: str


# Keep one block per area; append new settings to the block of their component.
SETTINGS: tuple[Setting, ...] = (
    # --- output and run ---
    Setting("ARCHIVER_OUTPUT_DIR", "output", "Folder for `warc/`, `items/`, `reports/` and the state file."),
    Setting("ARCHIVER_RUN_ID", None, "Name of this run (report, item file); default `<spider>-<UTC time>-<pid>`."),
    Setting("ARCHIVER_PROGRESS_INTERVAL", 30.0, "Seconds between progress lines in the log (0 = off)."),
    Setting(
        "ARCHIVER_GC_FREEZE",
        True,
        "Move the objects alive when the spider opens out of the garbage collector (shorter collection pauses).",
    ),
    # --- feed dumps ---
    Setting(
        "ARCHIVER_READ_DUMPS",
        True,
        "Read the `dumps` argument at start; distributed workers take jobs from Redis instead.",
    ),
    Setting(
        "ARCHIVER_DUMP_MAX_BYTES",
        10 * 1024 * 1024,
        "Largest feed-dump file read; larger ones fail as `too large`.",
    ),
    # --- crawl scope and politeness ---
    Setting(
        "ARCHIVER_ALLOWED_HOSTS",
        list(DW_HOSTS),
        "Hosts that may be fetched; every other URL is recorded, not fetched.",
    ),
    Setting(
        "ARCHIVER_REFS_DEPTH",
        1,
        "Hops of cited articles whose API JSON is fetched (0 = none); spider arg `refs_depth`.",
    ),
    Setting("ARCHIVER_MEDIA", True, "Fetch the images an item shows; spider arg `media`."),
    Setting(
        "ARCHIVER_REQUISITES",
        True,
        "Fetch what archived pages load (stylesheets and what they name, scripts, fonts, icons, chrome images), "
        "once per URL per run, on the allowed hosts; spider arg `requisites`.",
    ),
    Setting(
        "ARCHIVER_ALLOW_PRIVATE_ADDRESSES",
        False,
        "Let names resolve to private, loopback or link-local addresses (stand-in routes always may).",
    ),
    Setting(
        "ARCHIVER_RETRY_BACKOFF", 1.0, "Seconds before the first retry of a failed exchange; doubles with each retry."
    ),
    Setting("ARCHIVER_RETRY_WAIT_MAX", 120.0, "Longest wait before a retry, also for a server's Retry-After."),
    Setting(
        "ARCHIVER_REFERENCE_CLAIMS",
        None,
        "`module:factory(crawler)` of a claim shared by workers, so a cited article is fetched by one of them.",
    ),
    Setting(
        "ARCHIVER_MAX_REFERENCES",
        200,
        "Cited articles followed per article; the rest are listed in the item, not fetched.",
    ),
    Setting("ARCHIVER_MAX_IMAGES", 100, "Images fetched per article; the rest are listed in the item, not fetched."),
    Setting(
        "ARCHIVER_CONTACT",
        "https://github.com/archiver",
        "Contact URL or e-mail put in the User-Agent and warcinfo.",
    ),
    # --- stand-in ---
    Setting(
        "ARCHIVER_STANDIN",
        False,
        "Start the DW stand-in in-process and route the DW hosts to it (offline run).",
    ),
    Setting(
        "ARCHIVER_STANDIN_ADDRESS",
        None,
        "`host:https_port,http_port` of a running stand-in (`python -m archiver.standin`) to route DW hosts to.",
    ),
    Setting("ARCHIVER_STANDIN_DUMPS", None, "Dumps the in-process stand-in serves; default: the spider's `dumps`."),
    Setting(
        "ARCHIVER_STANDIN_FAULTS",
        "",
        "Faults of the in-process stand-in, e.g. `54243544:404,1048137@api:reset` (docs/standin.md).",
    ),
    Setting(
        "ARCHIVER_STANDIN_FAULT_RATE", 0.0, "Share of ids the in-process stand-in gives a scheduled fault (seeded)."
    ),
    Setting("ARCHIVER_STANDIN_SEED", 0, "Seed of the in-process stand-in's fault schedule."),
    Setting("ARCHIVER_STANDIN_SLOW_SECONDS", 45.0, "Delay of the stand-in's `slow` fault (beyond DOWNLOAD_TIMEOUT)."),
    # --- extraction ---
    Setting(
        "ARCHIVER_EXTRACT_WORKERS",
        0,
        "Processes that run trafilatura off the reactor thread (0 = one per core but the reactor's, at least one).",
    ),
    Setting(
        "ARCHIVER_EXTRACT_TIMEOUT",
        60.0,
        "Seconds one page may take in an extraction worker before it is failed (0 = no limit); time the worker "
        "waits for a core does not count (Linux).",
    ),
    Setting(
        "ARCHIVER_EXTRACT_IDLE_PRIORITY",
        True,
        "Extraction workers take a core only when no normally scheduled process wants it (Linux `SCHED_IDLE`, "
        "elsewhere niceness 19): the crawl's event loop is never kept waiting for a core by them.",
    ),
    # --- WARC ---
    Setting("ARCHIVER_WARC_ENABLED", True, "Write every exchange to WARC files below `<output>/warc/`."),
    Setting("ARCHIVER_WARC_PREFIX", "archiver", "First part of WARC file names."),
    Setting("ARCHIVER_WARC_VERSION", "1.1", "WARC version, `1.1` or `1.0` (whole-second dates)."),
    Setting("ARCHIVER_WARC_MAX_SIZE", 1_000_000_000, "Roll over to a new WARC file past this many bytes."),
    Setting("ARCHIVER_WARC_OPERATOR", None, "Operator named in warcinfo records."),
    Setting("ARCHIVER_WARC_GZIP_LEVEL", 6, "gzip level of each record (1 fast .. 9 small; see bench/warc.py)."),
    Setting("ARCHIVER_WARC_CHECK_ON_CLOSE", True, "Run the WARC validator on every closed file; failures log ERROR."),
    Setting(
        "ARCHIVER_WARC_CAPTURE_INDEX",
        "archiver.state.store:capture_index",
        "`module:factory(crawler)` of the digest index for revisits; default: the state (across runs).",
    ),
    # --- state and re-runs ---
    Setting("ARCHIVER_STATE_PATH", None, "SQLite state file; default `<output>/state.sqlite3`."),
    Setting(
        "ARCHIVER_RECHECK_AFTER",
        86400,
        "Seconds before an archived article is checked again (0 = recheck now).",
    ),
    Setting(
        "ARCHIVER_STATE_SYNCHRONOUS",
        "NORMAL",
        "SQLite `synchronous`: `NORMAL` survives kill -9; `FULL` also power loss.",
    ),
    Setting("ARCHIVER_FAILURE_MAX_ATTEMPTS", 5, "Runs that may fail to fetch a URL or article before it is given up."),
    Setting(
        "ARCHIVER_FAILURE_BACKOFF", 3600, "Seconds before a later run retries a failure; doubles per further failure."
    ),
    Setting("ARCHIVER_FAILURE_BACKOFF_MAX", 7 * 86400, "Longest wait in seconds before a later run retries a failure."),
    Setting(
        "ARCHIVER_CONDITIONAL_REQUESTS",
        True,
        "Send If-None-Match / If-Modified-Since from the last capture's validators.",
    ),
    # --- scale-out ---
    Setting(
        "ARCHIVER_REDIS_PREFIX",
        "archiver",
        "First part of every Redis key of the distributed profile (one prefix per archive).",
    ),
    Setting(
        "ARCHIVER_WORKER_ID",
        None,
        "Name of this worker in Redis; default `<host>-<pid>` (a fixed name requeues its own jobs at restart).",
    ),
    Setting("ARCHIVER_IDLE_EXIT", 0, "Seconds a worker waits on an empty queue before it exits (0 = wait forever)."),
    Setting("ARCHIVER_POLL_INTERVAL", 1.0, "Seconds between two looks of a worker at the Redis job queue."),
    Setting("ARCHIVER_JOBS_IN_FLIGHT", 0, "Jobs a worker holds at once (0 = `CONCURRENT_REQUESTS`)."),
    Setting(
        "ARCHIVER_HEARTBEAT_TTL", 60.0, "Seconds after a worker's last heartbeat before its jobs are given to others."
    ),
    Setting(
        "ARCHIVER_DUPEFILTER_TTL",
        86400.0,
        "Seconds a request fingerprint stays seen in the Redis dupefilter (0 = forever).",
    ),
    Setting(
        "ARCHIVER_DIGEST_TTL", 0, "Seconds the Redis digest index keeps a URL after its last capture (0 = forever)."
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    """The default value of every ARCHIVER_* setting."""
    return {s.name: s.default for s in SETTINGS}


def get(settings: BaseSettings, name: str) -> Any:
    """The value of an ARCHIVER_* setting, falling back to its registered default.

    A switch (boolean default) is read as one, so `-s ARCHIVER_WARC_ENABLED=False` turns it off.
    """
    default = _BY_NAME[name].default
    if isinstance(default, bool):
        return settings.getbool(name, default)
    return settings.get(name, default)


def get_list(settings: BaseSettings, name: str) -> list[str]:
    """A list setting, also when given on the command line as `a,b,c`."""
    return settings.getlist(name, _BY_NAME[name].default)


def load_factory(path: str) -> Any:
    """The object a factory setting names, as `module:name` or `module.name`."""
    module, _, name = path.partition(":") if ":" in path else path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def output_dir(settings: BaseSettings) -> Path:
    """The run's output folder (`ARCHIVER_OUTPUT_DIR`)."""
    return Path(get(settings, "ARCHIVER_OUTPUT_DIR"))


def markdown_table() -> str:
    """The settings as the Markdown table that README shows."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | `{s.default!r}` | {s.doc} |")
    return "\n".join(rows)


def write_readme_table(readme: Path) -> None:
    """Replace the settings table between README's `settings-table` markers with the registry's."""
    text = readme.read_text("utf-8")
    start = text.index("\n", text.index("<!-- settings-table")) + 1
    end = text.index("<!-- end settings-table -->")
    readme.write_text(text[:start] + markdown_table() + "\n" + text[end:], "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-readme"]:
        write_readme_table(Path("README.md"))
    else:
        sys.stdout.write(markdown_table() + "\n")
