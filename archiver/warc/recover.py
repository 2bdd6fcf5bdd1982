"""Close orphaned `.open` WARC files (capture and WET) left by a dead process: cut at the last complete record, rename.

A file is only touched when no process holds its lock and the pid in its name is not alive on this host, so
recovery never races a live writer (of this or another run). Whole records are found by `check.iter_gzip_members`,
not warcio's ArchiveIterator, which reads a member cut short as a shorter record without an error.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from archiver.warc.check import iter_gzip_members, parse_record
from archiver.warc.writer import NAME_RE, OPEN_SUFFIX, fsync_dir, safe_hostname, warc_files


class LiveFileError(RuntimeError):
    """The `.open` file belongs to a live writer."""


class ClosedFileError(RuntimeError):
    """The file is a closed WARC file: recovery leaves it alone unless forced."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What recovering one file did."""

    source: Path
    path: Path | None  # the renamed file; None if nothing worth keeping was left (file removed)
    records: int
    kept_bytes: int
    dropped_bytes: int


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(path: Path) -> bool:
    """Whether the writer named in a `.open` file's name may still be running (same host, live pid)."""
    m = NAME_RE.match(path.name)
    if not m:
        return False
    if m.group("host") != safe_hostname():
        return True  # cannot see another machine's processes: leave its files alone
    pid = int(m.group("pid"))
    return pid != os.getpid() and pid_alive(pid)


def orphans(directory: Path) -> list[Path]:
    """`.open` WARC files (`*.warc.gz.open`, `*.warc.wet.gz.open`) in a folder whose writer is gone."""
    if not directory.is_dir():
        return []
    return [p for p in warc_files(directory, open_files=True) if not owner_alive(p)]


def complete_prefix(path: Path) -> tuple[int, int]:
    """(bytes, records) of the longest prefix of whole gzip members that each hold one whole record."""
    good_end, records = 0, 0
    with open(path, "rb") as f:
        for raw in iter_gzip_members(f):
            if raw.data is None:
                break
            try:
                rec = parse_record(raw.data)
            except (ValueError, UnicodeDecodeError):
                break
            if rec.declared_length is None or len(rec.block) != rec.declared_length or rec.trailer != b"\r\n\r\n":
                break
            good_end, records = raw.offset + raw.length, records + 1
    return good_end, records


def recover_file(path: Path, force: bool = False) -> Recovery:
    """Truncate an orphaned `.open` file after its last complete record and rename it (or remove it if empty).

    A closed file (no `.open`) is refused unless `force`, and then cut in place; nothing is changed when the
    final name is taken already.
    """
    path = Path(path)
    is_open = path.name.endswith(OPEN_SUFFIX)
    if not is_open and not force:
        raise ClosedFileError(
            f"{path}: a closed WARC file, left as it is (recovery only touches .open files; --force cuts a closed "
            "one at its last complete record)"
        )
    if not force and owner_alive(path):
        raise LiveFileError(f"{path}: its writer (pid in the name) is still running")
    final: Path | None = path.with_name(path.name.removesuffix(OPEN_SUFFIX))
    if is_open and final is not None and final.exists():
        raise FileExistsError(f"{final} already exists; {path} left as it is")
    with open(path, "r+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise LiveFileError(f"{path}: locked by a live writer") from e
            raise
        size = os.fstat(f.fileno()).st_size
        end, records = complete_prefix(path)
        first_ok = False
        if records:
            with open(path, "rb") as r:
                first = next(iter_gzip_members(r))
            first_ok = first.data is not None and parse_record(first.data).get("WARC-Type") == "warcinfo"
        if not first_ok:
            records, end = 0, 0
        if end == size and not is_open:
            return Recovery(path, path, records, end, 0)  # a sound closed file: nothing to cut
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())
        if records == 0:
            path.unlink()
            final = None
        elif is_open:
            assert final is not None
            os.rename(path, final)
        fsync_dir(path.parent)
    return Recovery(path, final, records, end, size - end)


def recover_dir(directory: Path) -> list[Recovery]:
    """Recover every orphaned `.open` file in a folder; files of live writers are skipped."""
    done = []
    for path in orphans(directory):
        try:
            done.append(recover_file(path))
        except LiveFileError:
            continue
    return done
