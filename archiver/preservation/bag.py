"""BagIt 1.0 bags of an output folder's closed files, made with the Library of Congress's `bagit` library.

Payload: `data/warc/` (WARC files and their CDXJ), `data/items/`, `data/reports/`, as in the output folder. Files
enter as hard links where the file system allows, else as copies; the digests bagit computes on the way in are
compared with the ones recorded at close, and a file that no longer matches is refused by name. The bag is built
beside the target under a `.partial-<pid>` name and renamed into place, so a killed run leaves no bag.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bagit

from archiver import __version__
from archiver.preservation import manifest
from archiver.preservation.closure import closure
from archiver.warc.cdxj import cdxj_path
from archiver.warc.recover import pid_alive
from archiver.warc.wacz import run_text_files, run_warcs, warcinfo_fields
from archiver.warc.writer import NAME_RE, fsync_dir

CHECKSUMS = ("sha256", "sha512")
BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
PARTIAL = ".partial-"


class BagRefused(RuntimeError):
    """Files that cannot go into a bag: changed since they were recorded, missing or never recorded."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(slots=True)
class Selection:
    """What goes into a bag (paths relative to the output folder) and what it leaves out."""

    files: list[str]
    runs: list[str]
    carried: dict[str, int] = field(default_factory=dict)  # WARC files added for revisit originals
    dependencies: dict[str, int] = field(default_factory=dict)  # the same, left out (--no-closure)
    unresolved: int = 0  # revisits whose original is nowhere in the output folder
    revisits: int = 0


@dataclass(frozen=True, slots=True)
class BagResult:
    """A finished bag."""

    path: Path
    files: int
    bytes: int
    links: int
    copies: int


def _with_index(root: Path, warcs: Iterable[Path]) -> list[str]:
    """Relative paths of WARC files and of the CDXJ index beside each."""
    out = []
    for w in warcs:
        out.append(manifest.relative(root, w))
        if cdxj_path(w).exists():
            out.append(manifest.relative(root, cdxj_path(w)))
    return out


def select(root: Path, runs: Sequence[str] | None = None, with_closure: bool = True) -> Selection:
    """The closed files of some runs (all closed files if none are named), plus the WARC files holding the
    originals of their revisits (or, without closure, those files named as dependencies)."""
    root = Path(root)
    warc_dir = root / "warc"
    if runs:
        warcs = sorted({w for run in runs for w in run_warcs(warc_dir, run)})
        files = _with_index(root, warcs)
        texts = sorted({w for run in runs for w in run_text_files(warc_dir, run)})
        files += [manifest.relative(root, w) for w in texts]
        for run in runs:
            for rel in (f"items/{run}.jsonl", f"reports/{run}.json"):
                if (root / rel).exists():
                    files.append(rel)
        run_names = list(runs)
    else:
        files = manifest.archive_files(root)
        warcs = [root / f for f in files if f.startswith("warc/") and f.endswith(".warc.gz")]
        names = {Path(f).stem for f in files if f.startswith("reports/") and f.endswith(".json")}
        names |= {warcinfo_fields(w).get("isPartOf") or "" for w in warcs}
        run_names = sorted(names - {""})
    sel = Selection(sorted(set(files)), run_names)
    found = closure(warc_dir, warcs)
    sel.revisits, sel.unresolved = found.revisits, len(found.unresolved)
    needed = {manifest.relative(root, p): n for p, n in sorted(found.originals.items())}
    if with_closure:
        sel.carried = needed
        sel.files = sorted(set(sel.files) | set(_with_index(root, found.originals)))
    else:
        sel.dependencies = needed
    return sel


def _items(root: Path, files: Iterable[str]) -> Iterable[dict]:
    for rel in files:
        if rel.startswith("items/") and rel.endswith(".jsonl"):
            with open(root / rel, encoding="utf-8") as f:
                for line in f:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue


def crawl_dates(root: Path, files: Iterable[str]) -> tuple[str, str] | None:
    """(first, last) time of the crawls: the runs' reports, else the times in the WARC file names."""
    times = []
    for rel in files:
        if rel.startswith("reports/") and rel.endswith(".json"):
            try:
                report = json.loads((root / rel).read_text("utf-8"))
                times += [t for t in (report.get("started"), report.get("finished")) if t]
            except (ValueError, AttributeError):
                continue
        elif m := NAME_RE.match(Path(rel).name):
            ts = m.group("ts")
            times.append(f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z")
    return (min(times), max(times)) if times else None


def bag_info(root: Path, sel: Selection, given: Mapping[str, str] | None = None) -> dict[str, str | list[str]]:
    """bag-info.txt fields: those given (ARCHIVER_BAG_INFO: Source-Organization, Contact-*, External-Description,
    ...), then what archiver knows: runs, crawl dates, article count, version, and the bag's revisit closure."""
    info: dict[str, str | list[str]] = {k: str(v) for k, v in (given or {}).items()}
    info.setdefault(
        "External-Description",
        "Web archive of Deutsche Welle articles made by archiver: WARC files with their CDXJ indexes, "
        "article items (JSON Lines) and run reports.",
    )
    if sel.runs:
        info["Archiver-Run"] = list(sel.runs)
    dates = crawl_dates(root, [f for f in sel.files if f not in sel.carried])
    if dates:
        info["Crawl-Date-Range"] = f"{dates[0]}/{dates[1]}"
    articles = {it.get("article_id") for it in _items(root, sel.files) if it.get("kind") != "reference"}
    info["Article-Count"] = str(len(articles - {None}))
    info["Archiver-Version"] = __version__
    info["Revisit-Records"] = str(sel.revisits)
    if sel.carried:
        info["Revisit-Originals-Included"] = sorted(sel.carried)
    if sel.dependencies:
        info["Depends-On"] = sorted(sel.dependencies)
    if sel.unresolved:
        info["Unresolved-Revisits"] = str(sel.unresolved)
    return info


def precheck(root: Path, files: Iterable[str], recorded: Mapping[str, manifest.Recorded]) -> None:
    """Refuse files that are not recorded, gone, or whose size differs from the record (before any copying)."""
    problems = []
    for rel in files:
        rec = recorded.get(rel)
        if rec is None:
            problems.append(f"{rel}: unrecorded (no digest was recorded when it was closed)")
            continue
        try:
            size = os.stat(root / rel).st_size
        except FileNotFoundError:
            problems.append(f"{rel}: missing")
            continue
        if rec.size is not None and size != rec.size:
            problems.append(f"{rel}: changed (size {size}, recorded {rec.size})")
    if problems:
        raise BagRefused(problems)


def remove_stale(target: Path) -> None:
    """Remove what killed `scrapy bag` runs left beside the target (`.<name>.partial-<pid>` of dead pids)."""
    for p in target.parent.glob(f".{target.name}{PARTIAL}*"):
        pid = p.name.rsplit(PARTIAL, 1)[1].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def place(src: Path, dst: Path, link: bool = True) -> bool:
    """Put a file into the bag: a hard link if asked and the file system allows (True), else a copy (False)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError:
            pass
    shutil.copy2(src, dst)
    return False


def build(
    root: Path, sel: Selection, target: Path, info: Mapping[str, str | list[str]], tar: bool = False, link: bool = True
) -> BagResult:
    """Make the bag at `target` (a directory, or with `tar` a .tar file); BagRefused names files that fail."""
    root, target = Path(root), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    recorded = manifest.load(root)
    precheck(root, sel.files, recorded)
    work = target.parent / f".{target.name}{PARTIAL}{os.getpid()}"
    work.mkdir()
    try:
        links = sum(place(root / rel, work / rel, link) for rel in sel.files)
        bag = bagit.make_bag(str(work), dict(info), checksums=list(CHECKSUMS))
        # bagit writes 0.97; the bag is 1.0 (same layout here): say so and rewrite the tag manifests.
        (work / "bagit.txt").write_text(BAGIT_TXT, encoding="utf-8")
        bag = bagit.Bag(str(work))
        bag.save()
        changed = [
            f"{rel}: changed (sha256 {bag.entries['data/' + rel]['sha256']}, recorded {recorded[rel].sha256})"
            for rel in sel.files
            if bag.entries[f"data/{rel}"]["sha256"] != recorded[rel].sha256
        ]
        if changed:
            raise BagRefused(changed)
        oxum = str(bag.info["Payload-Oxum"])
        size = int(oxum.split(".")[0])
        if tar:
            tmp_tar = work.with_name(work.name + ".tar")
            with tarfile.open(tmp_tar, "w", format=tarfile.PAX_FORMAT) as t:
                t.add(work, arcname=target.name.removesuffix(".tar"))
            os.rename(tmp_tar, target)
            shutil.rmtree(work)
        else:
            os.rename(work, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        work.with_name(work.name + ".tar").unlink(missing_ok=True)
        raise
    return BagResult(target, len(sel.files), size, links, len(sel.files) - links)
