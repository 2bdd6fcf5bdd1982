"""Periodic crawls: a real scrapyd runs the deployed egg twice; the cron/systemd wrapper pulls before it crawls.

scrapyd and scrapyd-client live in their own virtualenv (setuptools<81, DESIGN §7) with the project's
dependencies but not the project: a job can only import `archiver` from the deployed egg.
It is kept in ~/.cache/archiver-tests/scrapyd-venv (or `ARCHIVER_TEST_SCRAPYD_VENV`) and rebuilt when the
requirements change.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.dw.dumps import read_dump

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
WRAPPER = DEPLOY / "archiver-run.sh"
DW_DUMPS = ROOT / "tests" / "data" / "feed-dumps" / "nodebe4-news-beyond-wall" / "articles" / "德国之声"
MIRROR_DUMPS = Path("articles") / "德国之声"

SCRAPYD_PINS = ("scrapyd==1.6.0", "scrapyd-client==2.0.3", "setuptools<81")
PROJECT_FILES = ("pyproject.toml", "README.md", "scrapy.cfg", "setup.py", "archiver", "settings")
JOB_TIMEOUT = 240.0  # seconds for one scheduled crawl, polled; generous for a loaded 2-core machine

# Two batches of DW dumps with distinct article ids: the second arrives between the two scheduled runs.
FIRST = ("1047798_", "1047802_", "1047803_")
SECOND = ("1047815_", "1047824_")


def dump_files(prefixes: tuple[str, ...]) -> list[Path]:
    """The test dumps whose file names start with the given feed numbers."""
    files = sorted(p for p in DW_DUMPS.iterdir() if p.name.startswith(prefixes))
    assert len(files) == len(prefixes)
    return files


def article_ids(files: list[Path]) -> set[int]:
    """The DW article ids the dumps name."""
    ids = {read_dump(p).article_id for p in files}
    assert None not in ids and len(ids) == len(files)
    return ids  # type: ignore[return-value]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- scrapyd -------------------------------------------------------------------------------------


def venv_home() -> Path:
    """Where the scrapyd virtualenv is kept between sessions (rebuilt when the requirements change)."""
    if kept := os.environ.get("ARCHIVER_TEST_SCRAPYD_VENV"):
        return Path(kept)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "archiver-tests" / "scrapyd-venv"


@pytest.fixture(scope="module")
def scrapyd_venv() -> Path:
    """A virtualenv with scrapyd, scrapyd-client and the project's dependencies (not the project)."""
    venv = venv_home()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    wanted = "\n".join([*SCRAPYD_PINS, *deps]) + "\n"
    stamp = venv / "archiver-test-requirements.txt"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest sessions running side by side build it once
        if not (stamp.exists() and stamp.read_text("utf-8") == wanted):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            proc = subprocess.run([*pip, *SCRAPYD_PINS, *deps], capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, proc.stderr[-4000:]
            stamp.write_text(wanted, "utf-8")
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import archiver"], capture_output=True, cwd=venv)
    assert probe.returncode != 0, "the scrapyd virtualenv must not see the project outside the egg"
    return venv


@dataclass
class Scrapyd:
    """A scrapyd process on loopback with its own folders."""

    url: str
    home: Path
    process: subprocess.Popen

    @property
    def eggs_dir(self) -> Path:
        return self.home / "eggs"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def get(self, endpoint: str, **params: str) -> dict:
        """GET a JSON endpoint."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/{endpoint}{query}", timeout=30) as response:
            return json.load(response)

    def post(self, endpoint: str, fields: list[tuple[str, str]]) -> dict:
        """POST form fields (repeated names allowed, as `setting=` is) to a JSON endpoint."""
        body = urllib.parse.urlencode(fields).encode()
        with urllib.request.urlopen(f"{self.url}/{endpoint}", data=body, timeout=30) as response:
            return json.load(response)

    def wait_finished(self, project: str, job: str, timeout: float = JOB_TIMEOUT) -> dict:
        """Poll listjobs.json until the job is finished; return its entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.get("listjobs.json", project=project)
            done = [j for j in jobs["finished"] if j["id"] == job]
            if done:
                return done[0]
            assert self.process.poll() is None, "scrapyd died"
            time.sleep(0.5)
        pytest.fail(f"job {job} not finished after {timeout:.0f}s: {self.get('listjobs.json', project=project)}")

    def job_log(self, project: str, spider: str, job: str) -> str:
        """The log scrapyd kept for a job."""
        return (self.logs_dir / project / spider / f"{job}.log").read_text("utf-8", errors="replace")


@pytest.fixture(scope="module")
def scrapyd(scrapyd_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapyd]:
    """scrapyd 1.6 on a free loopback port; no items_dir, so items go to the crawl's own output folder."""
    home = tmp_path_factory.mktemp("scrapyd")
    port = free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"http_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {home / 'logs'}\n"
        "items_dir =\n"
        f"dbs_dir = {home / 'dbs'}\n"
        "poll_interval = 0.5\n"
        "max_proc = 1\n",
        "utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPY_", "PYTHON"))}
    log = (home / "scrapyd.out").open("wb")
    process = subprocess.Popen(
        [str(scrapyd_venv / "bin" / "scrapyd"), "--pidfile", str(home / "scrapyd.pid")],
        cwd=home,  # scrapyd reads ./scrapyd.conf; jobs start here, away from any scrapy.cfg
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Scrapyd(f"http://127.0.0.1:{port}", home, process)
    deadline = time.monotonic() + 60
    while True:
        try:
            assert server.get("daemonstatus.json")["status"] == "ok"
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"scrapyd did not start:\n{(home / 'scrapyd.out').read_text(errors='replace')}")
            time.sleep(0.3)
    yield server
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def project_copy(dest: Path, deploy_url: str) -> Path:
    """The project's source as a clean checkout has it, plus a `[deploy:test]` target at `deploy_url`."""
    dest.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    with (dest / "scrapy.cfg").open("a", encoding="utf-8") as cfg:
        cfg.write(f"\n[deploy:test]\nurl = {deploy_url}\nproject = archiver\n")
    return dest


@pytest.fixture(scope="module")
def deployed(scrapyd: Scrapyd, scrapyd_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Deploy the project with `scrapyd-deploy`; return the version."""
    source = project_copy(tmp_path_factory.mktemp("deploy") / "archiver", scrapyd.url)
    proc = subprocess.run(
        [str(scrapyd_venv / "bin" / "scrapyd-deploy"), "test", "--version", "r1"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["status"] == "ok" and answer["project"] == "archiver" and answer["version"] == "r1", answer
    return "r1"


def test_deployed_egg_carries_code_data_and_settings_entry_point(scrapyd: Scrapyd, deployed: str) -> None:
    """The egg scrapyd stores has both packages, all package data and the `scrapy.settings` entry point."""
    egg = scrapyd.eggs_dir / "archiver" / f"{deployed}.egg"
    with zipfile.ZipFile(egg) as zf:
        names = set(zf.namelist())
        entry_points = zf.read("EGG-INFO/entry_points.txt").decode()
    assert re.search(r"^\[scrapy\]\s*\nsettings = settings\.default\s*$", entry_points, re.M), entry_points
    # Every module, every file below a `data` folder and every JSON file (the schema) of both packages.
    for package in ("archiver", "settings"):
        wanted = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / package).rglob("*")
            if p.is_file()
            and "__pycache__" not in p.parts
            and (p.suffix in (".py", ".json") or "data" in p.relative_to(ROOT).parts)
        }
        assert wanted <= names, sorted(wanted - names)
    assert "archiver/item.schema.json" in names
    assert any(n.startswith("archiver/data/sample-dumps/") and n.endswith(".md") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)

    assert scrapyd.get("listprojects.json")["projects"] == ["archiver"]
    assert scrapyd.get("listversions.json", project="archiver")["versions"] == [deployed]
    assert scrapyd.get("listspiders.json", project="archiver")["spiders"] == ["feeddump"]


def warc_records(folder: Path) -> list[dict[str, str]]:
    """Headers of every record in the folder's complete WARC files, plus `_file` (the file name)."""
    records: list[dict[str, str]] = []
    for path in sorted(folder.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                records.append({**dict(record.rec_headers.headers), "_file": path.name})
    return records


def schedule(scrapyd: Scrapyd, dumps: Path, output: Path, settings: dict[str, str]) -> str:
    """Schedule `feeddump` through schedule.json with the dumps argument and `setting=` pairs."""
    fields = [("project", "archiver"), ("spider", "feeddump"), ("dumps", str(dumps))]
    fields += [("setting", f"{k}={v}") for k, v in {"ARCHIVER_OUTPUT_DIR": str(output), **settings}.items()]
    answer = scrapyd.post("schedule.json", fields)
    assert answer["status"] == "ok", answer
    return answer["jobid"]


def run_outputs(output: Path, run_id: str) -> tuple[dict, list[dict]]:
    """The report and the items a run wrote to the output folder."""
    report = json.loads((output / "reports" / f"{run_id}.json").read_text("utf-8"))
    lines = (output / "items" / f"{run_id}.jsonl").read_text("utf-8").splitlines()
    return report, [json.loads(line) for line in lines]


def test_scheduled_twice_second_run_archives_only_new_articles(
    scrapyd: Scrapyd, deployed: str, standin, tmp_path: Path
) -> None:
    """Two scrapyd jobs on one output: the second archives the new dumps and revisits the rechecked articles."""
    dumps, output = tmp_path / "dumps", tmp_path / "output"
    dumps.mkdir()
    first, second = dump_files(FIRST), dump_files(SECOND)
    for path in first:
        shutil.copy2(path, dumps / path.name)
    routing = standin.scrapy_settings()

    # Run 1: the spider argument and the settings reach the job (its report and items are in our output
    # folder, under our run id; the stand-in answered, so the routing settings arrived too).
    job1 = schedule(scrapyd, dumps, output, {**routing, "ARCHIVER_RUN_ID": "sched-1"})
    entry1 = scrapyd.wait_finished("archiver", job1)
    assert entry1["spider"] == "feeddump" and entry1["project"] == "archiver"
    log1 = scrapyd.job_log("archiver", "feeddump", job1)
    assert "Spider opened" in log1 and "Spider closed (finished)" in log1, log1[-3000:]
    report1, items1 = run_outputs(output, "sched-1")
    assert report1["dumps"]["read"] == len(first)
    assert report1["articles"]["planned"] == report1["articles"]["complete"] == len(first)
    assert {i["article_id"] for i in items1 if not i.get("depth")} == article_ids(first)
    records1 = warc_records(output / "warc")
    responses1 = {r["WARC-Target-URI"]: r for r in records1 if r["WARC-Type"] == "response"}
    for entry in map(read_dump, first):
        assert entry.page_url in responses1 and entry.api_url in responses1
    assert not [r for r in records1 if r["WARC-Type"] == "revisit"]

    # New dumps arrive; run 2 also rechecks every archived article now (ARCHIVER_RECHECK_AFTER=0).
    for path in second:
        shutil.copy2(path, dumps / path.name)
    job2 = schedule(scrapyd, dumps, output, {**routing, "ARCHIVER_RUN_ID": "sched-2", "ARCHIVER_RECHECK_AFTER": "0"})
    scrapyd.wait_finished("archiver", job2)
    log2 = scrapyd.job_log("archiver", "feeddump", job2)
    assert "Spider closed (finished)" in log2, log2[-3000:]
    report2, items2 = run_outputs(output, "sched-2")
    run2 = [r for r in warc_records(output / "warc") if r["_file"] not in {r["_file"] for r in records1}]
    responses2 = {r["WARC-Target-URI"] for r in run2 if r["WARC-Type"] == "response"}
    revisits2 = {r["WARC-Target-URI"]: r for r in run2 if r["WARC-Type"] == "revisit"}

    # Only the new dumps are read: the unchanged ones are skipped.
    assert report2["dumps"]["read"] == len(second), report2["dumps"]
    assert report2["dumps"]["skipped"] == len(first), report2["dumps"]
    assert report2["articles"]["failed"] == report2["articles"]["partial"] == 0, report2["articles"]
    # Only the new articles are archived in full and give items (unchanged content gives no new version).
    assert {i["article_id"] for i in items2 if not i.get("depth")} == article_ids(second)
    for entry in map(read_dump, second):
        assert entry.page_url in responses2 and entry.api_url in responses2
    # The old articles are rechecked: unchanged, so revisit records that point at the run-1 captures.
    profiles = ("/revisit/server-not-modified", "/revisit/identical-payload-digest")
    for entry in map(read_dump, first):
        for url in (entry.page_url, entry.api_url):
            assert url not in responses2, f"{url} archived in full again"
            assert url in revisits2, f"no revisit record for {url}"
            assert revisits2[url]["WARC-Refers-To"] == responses1[url]["WARC-Record-ID"]
            assert revisits2[url]["WARC-Profile"].endswith(profiles), revisits2[url]


# --- the cron / systemd wrapper ------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

# A dry-run stand-in for `scrapy`: records how it was called and which dumps it would read, then exits.
FAKE_SCRAPY = """#!{python}
import json, os, sys
args = sys.argv[1:]
dumps = next(a.split("=", 1)[1] for a in args if a.startswith("dumps="))
seen = sorted(name for folder in dumps.split(",") for name in os.listdir(folder))
with open(os.environ["FAKE_SCRAPY_RECORD"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps({{"args": args, "cwd": os.getcwd(), "seen": seen}}) + "\\n")
sys.exit(int(os.environ.get("FAKE_SCRAPY_EXIT", "0")))
"""


def git(*args: str, cwd: Path) -> str:
    """Run git quietly with a fixed identity; return its output."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@dataclass
class DumpsRepo:
    """A bare 'remote' dumps repository, a clone that publishes to it, and the mirror the wrapper pulls."""

    remote: Path
    upstream: Path
    mirror: Path

    def publish(self, files: list[Path], message: str) -> str:
        """Commit dump files under articles/德国之声/ upstream and push; return the new commit."""
        folder = self.upstream / MIRROR_DUMPS
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, folder / path.name)
        git("add", "-A", cwd=self.upstream)
        git("commit", "-q", "-m", message, cwd=self.upstream)
        git("push", "-q", "origin", "main", cwd=self.upstream)
        return git("rev-parse", "HEAD", cwd=self.upstream)


@pytest.fixture
def dumps_repo(tmp_path: Path) -> DumpsRepo:
    """A dumps repository with the first batch, already mirrored."""
    repo = DumpsRepo(tmp_path / "remote.git", tmp_path / "upstream", tmp_path / "mirrors" / "news-beyond-wall")
    git("init", "-q", "--bare", "-b", "main", str(repo.remote), cwd=tmp_path)
    git("clone", "-q", str(repo.remote), str(repo.upstream), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=repo.upstream)
    repo.publish(dump_files(FIRST), "first dumps")
    repo.mirror.parent.mkdir()
    git("clone", "-q", str(repo.remote), str(repo.mirror), cwd=tmp_path)
    return repo


@pytest.fixture
def fake_scrapy(tmp_path: Path) -> tuple[Path, Path]:
    """The dry-run scrapy and the file it records its calls in."""
    path = tmp_path / "bin" / "scrapy"
    path.parent.mkdir()
    path.write_text(FAKE_SCRAPY.format(python=sys.executable), "utf-8")
    path.chmod(0o755)
    return path, tmp_path / "scrapy-calls.jsonl"


def run_wrapper(*args: str, scrapy: tuple[Path, Path], env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run deploy/archiver-run.sh as systemd or cron would (executed directly) with the dry-run scrapy."""
    fake, record = scrapy
    run_env = {**os.environ, **GIT_ENV, "ARCHIVER_SCRAPY": str(fake), "FAKE_SCRAPY_RECORD": str(record), **(env or {})}
    return subprocess.run([str(WRAPPER), *args], capture_output=True, text=True, env=run_env, cwd=cwd, timeout=60)


def calls(scrapy: tuple[Path, Path]) -> list[dict]:
    """What the dry-run scrapy was called with, in order."""
    record = scrapy[1]
    return [json.loads(line) for line in record.read_text("utf-8").splitlines()] if record.exists() else []


def test_wrapper_pulls_the_mirror_then_crawls_it(dumps_repo: DumpsRepo, fake_scrapy, tmp_path: Path) -> None:
    """New dumps pushed upstream are in the mirror before the crawl starts, and the crawl gets the right arguments."""
    head = dumps_repo.publish(dump_files(SECOND), "second dumps")
    assert git("rev-parse", "HEAD", cwd=dumps_repo.mirror) != head
    output = tmp_path / "output"

    proc = run_wrapper(
        str(dumps_repo.mirror),
        "--",
        "-s",
        "ARCHIVER_RECHECK_AFTER=0",
        scrapy=fake_scrapy,
        env={"ARCHIVER_OUTPUT": str(output), "ARCHIVER_PROJECT": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert git("rev-parse", "HEAD", cwd=dumps_repo.mirror) == head
    [call] = calls(fake_scrapy)
    dumps = dumps_repo.mirror / MIRROR_DUMPS
    assert call["args"] == [
        "crawl",
        "feeddump",
        "-a",
        f"dumps={dumps}",
        "-s",
        f"ARCHIVER_OUTPUT_DIR={output}",
        "-s",
        "ARCHIVER_RECHECK_AFTER=0",
    ]
    assert call["cwd"] == str(ROOT)  # where scrapy.cfg names settings.default
    assert call["seen"] == sorted(p.name for p in dump_files(FIRST) + dump_files(SECOND))
    assert f"is at {head[:7]}" in proc.stderr


def test_wrapper_runs_the_real_crawl_on_the_pulled_dumps(dumps_repo: DumpsRepo, standin, tmp_path: Path) -> None:
    """With the real scrapy, the run archives every article of the freshly pulled mirror into the output folder."""
    dumps_repo.publish(dump_files(SECOND), "second dumps")
    output = tmp_path / "output"
    settings = {**standin.scrapy_settings(), "ARCHIVER_RUN_ID": "wrapped"}
    scrapy_args = [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]
    env = {**os.environ, **GIT_ENV, "ARCHIVER_OUTPUT": str(output)}
    env["ARCHIVER_SCRAPY"] = str(Path(sys.executable).parent / "scrapy")
    proc = subprocess.run(
        [str(WRAPPER), str(dumps_repo.mirror), "--", *scrapy_args],
        capture_output=True,
        text=True,
        env=env,
        timeout=JOB_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report, items = run_outputs(output, "wrapped")
    assert report["dumps"]["read"] == len(FIRST) + len(SECOND)
    assert {i["article_id"] for i in items if not i.get("depth")} == article_ids(dump_files(FIRST + SECOND))


def test_wrapper_reads_several_mirrors_and_defaults_to_the_project(
    dumps_repo: DumpsRepo, fake_scrapy, tmp_path: Path
) -> None:
    """Several mirrors become one comma-separated `dumps`; output defaults to <project>/output, relative paths work."""
    other = tmp_path / "mirrors" / "second-mirror"
    git("clone", "-q", str(dumps_repo.remote), str(other), cwd=tmp_path)
    proc = run_wrapper("news-beyond-wall", "second-mirror", scrapy=fake_scrapy, cwd=tmp_path / "mirrors")
    assert proc.returncode == 0, proc.stderr
    [call] = calls(fake_scrapy)
    assert call["args"][3] == f"dumps={dumps_repo.mirror / MIRROR_DUMPS},{other / MIRROR_DUMPS}"
    assert call["args"][5] == f"ARCHIVER_OUTPUT_DIR={ROOT / 'output'}"
    assert call["cwd"] == str(ROOT)


def test_wrapper_does_not_crawl_when_the_pull_fails(dumps_repo: DumpsRepo, fake_scrapy) -> None:
    """A mirror that cannot fast-forward stops the run before the crawl, with git's status."""
    (dumps_repo.mirror / "local.txt").write_text("diverged\n", "utf-8")
    git("add", "local.txt", cwd=dumps_repo.mirror)
    git("commit", "-q", "-m", "local change", cwd=dumps_repo.mirror)
    dumps_repo.publish(dump_files(SECOND), "second dumps")

    proc = run_wrapper(str(dumps_repo.mirror), scrapy=fake_scrapy)
    assert proc.returncode != 0
    assert "git pull --ff-only failed" in proc.stderr and "no crawl" in proc.stderr
    assert calls(fake_scrapy) == []


def test_wrapper_refuses_a_mirror_in_use(dumps_repo: DumpsRepo, fake_scrapy) -> None:
    """While another wrapper holds the mirror, a second one exits 75 at once, without pulling or crawling."""
    lock = dumps_repo.mirror / ".git" / "archiver-run.lock"
    head = dumps_repo.publish(dump_files(SECOND), "second dumps")
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_wrapper(str(dumps_repo.mirror), scrapy=fake_scrapy)
    assert proc.returncode == 75
    assert "another archiver-run.sh is using" in proc.stderr
    assert calls(fake_scrapy) == []
    assert git("rev-parse", "HEAD", cwd=dumps_repo.mirror) != head


def test_wrapper_exits_with_the_crawl_status(dumps_repo: DumpsRepo, fake_scrapy) -> None:
    """The crawl's exit status is the wrapper's (1 when the output folder is locked by another run)."""
    proc = run_wrapper(str(dumps_repo.mirror), scrapy=fake_scrapy, env={"FAKE_SCRAPY_EXIT": "1"})
    assert proc.returncode == 1
    assert len(calls(fake_scrapy)) == 1


def test_wrapper_rejects_bad_arguments(tmp_path: Path, fake_scrapy) -> None:
    """No mirror, a missing folder, or a folder that is not a git clone: status 2 and a message."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for args, message in (
        ((), "usage"),
        ((str(tmp_path / "missing"),), "no such mirror folder"),
        ((str(plain),), "not a git clone"),
    ):
        proc = run_wrapper(*args, scrapy=fake_scrapy)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    assert calls(fake_scrapy) == []


# --- systemd units and crontab -------------------------------------------------------------------


def test_systemd_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the service and timer (paths pointed at this checkout), without warnings."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    for name in ("archiver.service", "archiver.timer"):
        text = (DEPLOY / name).read_text("utf-8").replace("/opt/archiver", str(ROOT))
        (tmp_path / name).write_text(text, "utf-8")
    service = (tmp_path / "archiver.service").read_text("utf-8")
    assert f"ExecStart={WRAPPER} " in service
    assert "Type=oneshot" in service and "KillMode=mixed" in service
    assert "Unit=archiver.service" in (tmp_path / "archiver.timer").read_text("utf-8")
    proc = subprocess.run(
        [analyze, "verify", "archiver.service", "archiver.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_crontab_line_runs_the_wrapper(dumps_repo: DumpsRepo, fake_scrapy, tmp_path: Path) -> None:
    """The crontab example's command line, run the way cron runs it, pulls, crawls and appends to its log."""
    base = tmp_path / "var"
    (base / "logs").mkdir(parents=True)
    (base / "mirrors").symlink_to(dumps_repo.mirror.parent)
    head = dumps_repo.publish(dump_files(SECOND), "second dumps")

    text = (DEPLOY / "crontab.example").read_text("utf-8")
    text = text.replace("/opt/archiver", str(ROOT)).replace("/var/lib/archiver", str(base))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LOGNAME": "archiver", **GIT_ENV}
    env["FAKE_SCRAPY_RECORD"] = str(fake_scrapy[1])
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    jobs = []
    for line in lines:
        if re.match(r"^[A-Z_]+=", line):
            key, value = line.split("=", 1)
            env[key] = value
        else:
            jobs.append(line)
    [job] = jobs
    fields = job.split(None, 5)
    assert len(fields) == 6 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), job
    assert "%" not in fields[5]  # cron turns % into newlines
    env["ARCHIVER_SCRAPY"] = str(fake_scrapy[0])  # the dry run instead of the real crawl
    proc = subprocess.run([env.get("SHELL", "/bin/sh"), "-c", fields[5]], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert git("rev-parse", "HEAD", cwd=dumps_repo.mirror) == head
    [call] = calls(fake_scrapy)
    assert call["args"][5] == f"ARCHIVER_OUTPUT_DIR={base / 'output'}"
    assert "crawling" in (base / "logs" / "archiver.log").read_text("utf-8")
