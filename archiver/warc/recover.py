"""Close orphaned `.open` WARC and text files left by a dead process: cut at the last complete record, rename.

A file is only touched when no process holds its lock and the pid in its name is not alive on this host, so
recovery never races a live writer (of this or another run).
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from archiver.warc.check import iter_gzip_members, parse_record
from archiver.warc.writer import NAME_RE, OPEN_SUFFIX, TEXT_SUFFIX, fsync_dir, safe_hostname


class LiveFileError(RuntimeError):
    """The `.open` file belongs to a live writer."""


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
    """`.open` WARC files in a folder whose writer is gone."""
    if not directory.is_dir():
        return []
    found = [*directory.glob(f"*.warc.gz{OPEN_SUFFIX}"), *directory.glob(f"*{TEXT_SUFFIX}{OPEN_SUFFIX}")]
    return sorted(p for p in found if not owner_alive(p))


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
    """Truncate an orphaned `.open` file after its last complete record and rename it (or remove it if empty)."""
    path = Path(path)
    if not force and owner_alive(path):
        raise LiveFileError(f"{path}: its writer (pid in the name) is still running")
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
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())
        final: Path | None = path.with_name(path.name.removesuffix(OPEN_SUFFIX))
        if records == 0:
            path.unlink()
            final = None
        else:
            assert final is not None
            if final.exists():
                raise FileExistsError(f"{final} already exists; {path} left as it is")
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
