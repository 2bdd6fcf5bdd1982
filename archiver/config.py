"""Every ARCHIVER_* setting in one place: name, default and meaning.

Components read their settings through `get()`, so a project that does not start from
`settings.default` still gets these defaults. README's settings table is generated from here
(`python -m archiver.config`) and a test keeps the two in step.
"""

from __future__ import annotations

import glob
import importlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from archiver.run.schedule import DEFAULT_BUDGET, DEFAULT_SCHEDULE, RecheckPolicy, Schedule, parse_duration

DW_HOSTS = ("www.dw.com", "api.dw.com", "static.dw.com")


@dataclass(frozen=True, slots=True)
class Parser:
    """A kind of value read by a function (a duration, a schedule), with what it accepts in words."""

    parse: Callable[[Any], Any]
    words: str


@dataclass(frozen=True, slots=True)
class Setting:
    """One ARCHIVER_* setting (or spider argument): its default, meaning and the values it allows.

    Without `kind` the value must be of its default's type (bool, int, float, str, list; a None default takes any
    text); `low`/`high` bound a number, `choices` lists the allowed words.
    """

    name: str
    default: Any
    doc: str
    kind: type | Parser | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None


DURATION = Parser(parse_duration, "a number of seconds or a duration (15m, 6h, 1d, 2w)")
SCHEDULE = Parser(lambda v: Schedule.parse(v) and v, "age:interval steps with growing ages, e.g. 1d:1h,7d:6h,*:90d")

# Keep one block per area; append new settings to the block of their component.
SETTINGS: tuple[Setting, ...] = (
    # --- output and run ---
    Setting("ARCHIVER_OUTPUT_DIR", "output", "Folder for `warc/`, `items/`, `reports/` and the state file."),
    Setting("ARCHIVER_RUN_ID", None, "Name of this run (report, item file); default `<spider>-<UTC time>-<pid>`."),
    Setting("ARCHIVER_PROGRESS_INTERVAL", 30.0, "Seconds between progress lines in the log (0 = off).", low=0),
    Setting(
        "ARCHIVER_REPLAY_PREFIX",
        "http://localhost:8080/archiver/",
        "pywb collection prefix of the archive-links `scrapy changes` writes (`PREFIX/TIMESTAMP/URL`).",
    ),
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
        low=1,
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
        low=0,
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
        "ARCHIVER_RETRY_BACKOFF",
        1.0,
        "Seconds before the first retry of a failed exchange; doubles with each retry.",
        low=0,
    ),
    Setting("ARCHIVER_RETRY_WAIT_MAX", 120.0, "Longest wait before a retry, also for a server's Retry-After.", low=0),
    Setting(
        "ARCHIVER_REFERENCE_CLAIMS",
        None,
        "`module:factory(crawler)` of a claim shared by workers, so a cited article is fetched by one of them.",
    ),
    Setting(
        "ARCHIVER_MAX_REFERENCES",
        200,
        "Cited articles followed per article; the rest are listed in the item, not fetched.",
        low=0,
    ),
    Setting(
        "ARCHIVER_MAX_IMAGES", 100, "Images fetched per article; the rest are listed in the item, not fetched.", low=0
    ),
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
        "ARCHIVER_STANDIN_FAULT_RATE",
        0.0,
        "Share of ids the in-process stand-in gives a scheduled fault (seeded).",
        low=0,
        high=1,
    ),
    Setting("ARCHIVER_STANDIN_SEED", 0, "Seed of the in-process stand-in's fault schedule."),
    Setting(
        "ARCHIVER_STANDIN_EPOCH",
        0,
        "Epoch of ARCHIVER_STANDIN_REVISIONS the in-process stand-in serves; above 0 its page chrome differs too.",
    ),
    Setting(
        "ARCHIVER_STANDIN_REVISIONS",
        "",
        "Edits and takedowns by epoch, `ID:KIND@EPOCH` (edit, title, gone, 404, moved, restore), comma-separated.",
    ),
    Setting(
        "ARCHIVER_STANDIN_SLOW_SECONDS", 45.0, "Delay of the stand-in's `slow` fault (beyond DOWNLOAD_TIMEOUT).", low=0
    ),
    # --- extraction ---
    Setting(
        "ARCHIVER_EXTRACT_WORKERS",
        0,
        "Processes that run trafilatura off the reactor thread (0 = one per core but the reactor's, at least one).",
        low=0,
    ),
    Setting(
        "ARCHIVER_EXTRACT_TIMEOUT",
        60.0,
        "Seconds one page may take in an extraction worker before it is failed (0 = no limit); time the worker "
        "waits for a core does not count (Linux).",
        low=0,
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
    Setting(
        "ARCHIVER_WARC_VERSION", "1.1", "WARC version, `1.1` or `1.0` (whole-second dates).", choices=("1.1", "1.0")
    ),
    Setting("ARCHIVER_WARC_MAX_SIZE", 1_000_000_000, "Roll over to a new WARC file past this many bytes.", low=1),
    Setting("ARCHIVER_WARC_OPERATOR", None, "Operator named in warcinfo records."),
    Setting(
        "ARCHIVER_WARC_GZIP_LEVEL",
        6,
        "gzip level of each record (1 fast .. 9 small; see bench/warc.py).",
        low=0,
        high=9,
    ),
    Setting("ARCHIVER_WARC_CHECK_ON_CLOSE", True, "Run the WARC validator on every closed file; failures log ERROR."),
    Setting(
        "ARCHIVER_WARC_CAPTURE_INDEX",
        "archiver.state:capture_index",
        "`module:factory(crawler)` of the digest index for revisits; default: the state (across runs).",
    ),
    # --- preservation hand-off ---
    Setting(
        "ARCHIVER_BAG_INFO",
        {},
        "bag-info.txt fields of `scrapy bag`: Source-Organization, Contact-Name, Contact-Email, External-Description, ...",
    ),
    # --- state and re-runs ---
    Setting("ARCHIVER_STATE_PATH", None, "SQLite state file; default `<output>/state.sqlite3`."),
    Setting(
        "ARCHIVER_RECHECK_SCHEDULE",
        list(DEFAULT_SCHEDULE),
        "`age:interval` steps (`s m h d w y`; last `*:` = older): how often an article of that age (from publication, "
        "else first capture) is checked again; an edit brings it back to the shortest interval for the first step's "
        "age (docs/periodic.md).",
        kind=SCHEDULE,
    ),
    Setting(
        "ARCHIVER_RECHECK_AFTER",
        None,
        "When set (a settings module, `custom_settings`, `-s`), one fixed interval in seconds for every article "
        "instead of the schedule, and no budget unless `ARCHIVER_RECHECK_BUDGET` is set too (0 = recheck all now).",
        kind=DURATION,
        low=0,
    ),
    Setting(
        "ARCHIVER_RECHECK_BUDGET",
        None,
        f"Scheduled rechecks per run, most overdue first (new articles and retries never count); unset: "
        f"{DEFAULT_BUDGET} with the schedule, no limit with `ARCHIVER_RECHECK_AFTER`; 0 = no limit.",
        kind=int,
        low=0,
    ),
    Setting(
        "ARCHIVER_STATE_SYNCHRONOUS",
        "NORMAL",
        "SQLite `synchronous`: `NORMAL` survives kill -9; `FULL` also power loss.",
        choices=("NORMAL", "FULL", "EXTRA"),
    ),
    Setting(
        "ARCHIVER_FAILURE_MAX_ATTEMPTS", 5, "Runs that may fail to fetch a URL or article before it is given up.", low=1
    ),
    Setting(
        "ARCHIVER_FAILURE_BACKOFF",
        3600,
        "Seconds before a later run retries a failure; doubles per further failure.",
        kind=float,
        low=0,
    ),
    Setting(
        "ARCHIVER_FAILURE_BACKOFF_MAX",
        7 * 86400,
        "Longest wait in seconds before a later run retries a failure.",
        kind=float,
        low=0,
    ),
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
    Setting(
        "ARCHIVER_IDLE_EXIT",
        0,
        "Seconds a worker waits on an empty queue before it exits (0 = wait forever).",
        kind=float,
        low=0,
    ),
    Setting("ARCHIVER_POLL_INTERVAL", 1.0, "Seconds between two looks of a worker at the Redis job queue.", low=0.01),
    Setting("ARCHIVER_JOBS_IN_FLIGHT", 0, "Jobs a worker holds at once (0 = `CONCURRENT_REQUESTS`).", low=0),
    Setting(
        "ARCHIVER_HEARTBEAT_TTL",
        60.0,
        "Seconds after a worker's last heartbeat before its jobs are given to others.",
        low=1,
    ),
    Setting(
        "ARCHIVER_DUPEFILTER_TTL",
        86400.0,
        "Seconds a request fingerprint stays seen in the Redis dupefilter (0 = forever).",
        low=0,
    ),
    Setting(
        "ARCHIVER_DIGEST_TTL",
        0,
        "Seconds the Redis digest index keeps a URL after its last capture (0 = forever).",
        kind=float,
        low=0,
    ),
    # --- tuning (docs/tuning.md: each switch off gives the plain Scrapy/stdlib path; also ARCHIVER_GC_FREEZE and
    # ARCHIVER_EXTRACT_IDLE_PRIORITY above) ---
    Setting(
        "ARCHIVER_CAPTURE_YIELDS",
        True,
        "The event loop serves the sockets that are ready before each WARC capture (and between a page's two "
        "halves), so requests and responses do not wait for it.",
    ),
    Setting(
        "ARCHIVER_DECODE_ONCE",
        True,
        "Scrapy's HttpCompressionMiddleware takes the HTML/JSON body the WARC capture already decoded instead of "
        "inflating it again.",
    ),
    Setting(
        "ARCHIVER_SCHEMA_FAST_CHECK",
        True,
        "Items are checked with a compiled schema (fastjsonschema), jsonschema only words the errors; off: "
        "jsonschema checks every item.",
    ),
    Setting(
        "ARCHIVER_EXPORT_ASDICT",
        True,
        "The items file's exporter turns each item into a dict with `dataclasses.asdict` before encoding it; off: "
        "Scrapy's exporter, with an ItemAdapter for every nested part.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}

# The main job's spider arguments (`-a name=value`), checked like the settings.
SPIDER_ARGS: tuple[Setting, ...] = (
    Setting("dumps", None, "Comma-separated dump files, folders or globs (default: the bundled sample dumps)."),
    Setting("refs_depth", None, "Hops of cited articles fetched (default: `ARCHIVER_REFS_DEPTH`).", kind=int, low=0),
    Setting("media", None, "Fetch the images an item shows (default: `ARCHIVER_MEDIA`).", kind=bool),
    Setting("requisites", None, "Fetch what archived pages load (default: `ARCHIVER_REQUISITES`).", kind=bool),
    Setting("limit", None, "Articles planned at most in this run.", kind=int, low=0),
    Setting(
        "since", None, "Only dump entries whose feed time is at or after this (ISO date/time, UTC).", kind=datetime
    ),
    Setting("until", None, "Only dump entries whose feed time is before this (ISO date/time, UTC).", kind=datetime),
)

# Scrapy settings whose wrong values would run a crawl that cannot work, checked like ARCHIVER_* ones.
SCRAPY_SETTINGS: tuple[Setting, ...] = (
    Setting("CONCURRENT_REQUESTS", None, "", kind=int, low=1),
    Setting("CONCURRENT_REQUESTS_PER_DOMAIN", None, "", kind=int, low=1),
    Setting("CONCURRENT_ITEMS", None, "", kind=int, low=1),
    Setting("DOWNLOAD_TIMEOUT", None, "", kind=float, low=0.001),
    Setting("DOWNLOAD_DELAY", None, "", kind=float, low=0),
    Setting("DOWNLOAD_MAXSIZE", None, "", kind=int, low=0),
    Setting("RETRY_TIMES", None, "", kind=int, low=0),
)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class BadValue(ValueError):
    """A setting or argument whose value is not allowed; the message is one line naming both and what is allowed."""


def allowed(s: Setting) -> str:
    """What a setting accepts, in words."""
    if s.choices:
        return "one of " + ", ".join(s.choices)
    kind = value_kind(s)
    if isinstance(kind, Parser):
        return kind.words + (f" >= {s.low:g}" if s.low is not None else "")
    words = {
        bool: "yes/no (1/0, true/false, on/off)",
        int: "a whole number",
        float: "a number",
        list: "a comma-separated list",
        datetime: "an ISO date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00Z)",
    }.get(kind, "text")
    if s.low is not None and s.high is not None:
        return f"{words} from {s.low:g} to {s.high:g}"
    if s.low is not None:
        return f"{words} >= {s.low:g}"
    if s.high is not None:
        return f"{words} <= {s.high:g}"
    return words


def value_kind(s: Setting) -> type | Parser:
    """The type a setting's value must have: its `kind`, else its default's type (text for a None default)."""
    if s.kind is not None:
        return s.kind
    if s.default is None:
        return str
    return list if isinstance(s.default, list | tuple) else type(s.default)


def parse_bool(value: Any) -> bool:
    """A yes/no value given as text (`1`, `yes`, `off`, ...) or as a bool."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"not a yes/no value: {value!r}")
    return word in TRUE_WORDS


def parse_datetime(value: str | datetime) -> datetime:
    """An ISO date or date-time; UTC when no zone is given."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _convert(kind: type | Parser, value: Any) -> Any:
    if isinstance(kind, Parser):
        return kind.parse(value)
    if kind is bool:
        return parse_bool(value)
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value.strip()) if isinstance(value, str) else int(value)
    if kind is float:
        number = float(value.strip()) if isinstance(value, str) else float(value)
        if isinstance(value, bool) or not math.isfinite(number):
            raise ValueError(value)
        return number
    if kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError(value)
        return list(value)
    if kind is datetime:
        return parse_datetime(value)
    return value if isinstance(value, str) else str(value)


def parse_value(s: Setting, value: Any) -> Any:
    """`value` as the setting's type, or `BadValue` naming the setting, the value and what is allowed."""
    if value is None or (value == "" and s.default is None):
        return None
    try:
        parsed = _convert(value_kind(s), value)
    except (TypeError, ValueError):
        parsed = None
        ok = False
    else:
        ok = (
            (not s.choices or str(parsed).upper() in {c.upper() for c in s.choices})
            and (s.low is None or parsed >= s.low)
            and (s.high is None or parsed <= s.high)
        )
    if not ok:
        raise BadValue(f"{s.name}={value!s} is not allowed: expected {allowed(s)}")
    return parsed


def validate_settings(settings: BaseSettings) -> list[str]:
    """One line per ARCHIVER_* (or checked Scrapy) setting whose value is not allowed."""
    problems = []
    for s in (*SETTINGS, *SCRAPY_SETTINGS):
        try:
            parse_value(s, settings.get(s.name))
        except BadValue as exc:
            problems.append(str(exc))
    return problems


def parse_spider_args(args: dict[str, Any]) -> dict[str, Any]:
    """The main job's arguments parsed (BadValue for the first one not allowed); unknown ones are left out."""
    parsed = {s.name: parse_value(s, args.get(s.name)) for s in SPIDER_ARGS}
    since, until = parsed["since"], parsed["until"]
    if since is not None and until is not None and since >= until:
        raise BadValue(f"since={args['since']} is not before until={args['until']}: expected since < until")
    return parsed


def missing_dumps(paths: list[str]) -> str | None:
    """A one-line problem when not one of the dump paths exists (a file, a folder or a glob that matches)."""
    if any(os.path.lexists(p) or glob.glob(p) for p in paths):
        return None
    return f"dumps={','.join(paths)}: no such file or folder (not one dump path exists)"


def output_problem(settings: BaseSettings) -> str | None:
    """A one-line problem when the output folder cannot be used: not a folder, under a file, or read-only."""
    out = output_dir(settings)
    where = f"ARCHIVER_OUTPUT_DIR={out}"
    probe = out
    while not probe.exists():
        if probe.is_symlink():
            return f"{where}: {probe} is a dangling symbolic link"
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{where}: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK) or os.statvfs(probe).f_flag & os.ST_RDONLY:
        return f"{where}: {probe} is not writable"
    return None


def defaults() -> dict[str, Any]:
    """The default value of every ARCHIVER_* setting."""
    return {s.name: s.default for s in SETTINGS}


def setting_default(name: str) -> Any:
    """The registered default of one ARCHIVER_* setting."""
    return _BY_NAME[name].default


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


def given(settings: BaseSettings, name: str) -> Any:
    """The value of a setting the user gave: at priority `project` or above (a settings module, a spider's
    `custom_settings`, `-s`, scrapyd's `setting=`) and not empty; None otherwise. Defaults (the registry's, Scrapy's,
    an add-on's or a command's, all below `project`) do not count, and `-s NAME=` unsets a settings module's value."""
    priority = settings.getpriority(name)
    if priority is None or priority < SETTINGS_PRIORITIES["project"]:
        return None
    value = settings.get(name)
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def recheck_policy(settings: BaseSettings) -> RecheckPolicy:
    """The schedule of `ARCHIVER_RECHECK_SCHEDULE`, or the fixed interval of `ARCHIVER_RECHECK_AFTER` when set."""
    fixed = given(settings, "ARCHIVER_RECHECK_AFTER")
    steps = get(settings, "ARCHIVER_RECHECK_SCHEDULE")
    return RecheckPolicy(
        schedule=Schedule.parse(steps),
        fixed=None if fixed is None else parse_duration(fixed),
    )


def recheck_budget(settings: BaseSettings) -> int | None:
    """Scheduled rechecks one run may claim (None = no limit): see ARCHIVER_RECHECK_BUDGET."""
    budget = given(settings, "ARCHIVER_RECHECK_BUDGET")
    if budget is None:
        return None if given(settings, "ARCHIVER_RECHECK_AFTER") is not None else DEFAULT_BUDGET
    n = int(budget)
    if n < 0:
        raise ValueError(f"ARCHIVER_RECHECK_BUDGET must be 0 (no limit) or more, not {budget!r}")
    return n or None


def output_dir(settings: BaseSettings) -> Path:
    """The run's output folder (`ARCHIVER_OUTPUT_DIR`)."""
    return Path(get(settings, "ARCHIVER_OUTPUT_DIR"))


def state_path(settings: BaseSettings, output: Path | None = None) -> Path:
    """The state file: `ARCHIVER_STATE_PATH`, else `state.sqlite3` in the output folder (`output`, if given)."""
    return Path(get(settings, "ARCHIVER_STATE_PATH") or (output or output_dir(settings)) / "state.sqlite3")


def markdown_table() -> str:
    """The settings as the Markdown table that README shows."""
    rows = ["| setting | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | `{s.default!r}` | {allowed(s)} | {s.doc} |")
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
