"""The output folder's append-only manifests: `fixity/manifest-sha256.txt` (BagIt's manifest line format,
`<sha256>  <path relative to the output folder>`) and `fixity/manifest-size.txt` (`<bytes>  <path>`).

A file is recorded once it is closed; a later line for the same path supersedes an earlier one. Each line is
appended with one write under an exclusive lock and fsynced, and a torn last line (power loss) is cut before
the next append, so readers never see half a line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

FIXITY_DIR = "fixity"
DIGEST_MANIFEST = "manifest-sha256.txt"
SIZE_MANIFEST = "manifest-size.txt"
OPEN_SUFFIX = ".open"
# Files that are still being written or are about to be replaced: never recorded, never reported.
TRANSIENT_SUFFIXES = (OPEN_SUFFIX, ".tmp")
# Subfolders of the output folder whose files are archive content (recorded at close, checked by fixity).
ARCHIVE_DIRS = ("warc", "items", "reports")
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the manifests say about one file."""

    path: str  # relative to the output folder, `/`-separated
    sha256: str
    size: int | None  # None when the size line is missing (killed between the two appends)


def encode_path(path: str) -> str:
    """A path as BagIt writes it in a manifest: `%`, CR and LF percent-encoded."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_path(path: str) -> str:
    """The inverse of `encode_path`."""
    return path.replace("%0A", "\n").replace("%0a", "\n").replace("%0D", "\r").replace("%0d", "\r").replace("%25", "%")


def relative(root: Path, path: Path) -> str:
    """`path` relative to the output folder `root`, `/`-separated; ValueError if it lies outside."""
    return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()


def inside(root: Path, path: Path) -> bool:
    """Whether `path` lies below the output folder `root`."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(root))


def is_transient(path: str | Path) -> bool:
    """Whether a file is still being written (`.open`) or a temporary file."""
    return str(path).endswith(TRANSIENT_SUFFIXES)


def hash_file(
    path: Path, algorithms: Iterable[str] = ("sha256",), progress=None, drop_cache: bool = False
) -> tuple[int, dict[str, str]]:
    """(size, hex digests) of a file, read in 1 MiB chunks into one reused buffer (bounded memory).

    `progress(n)` is called with the byte count of each chunk read; `drop_cache` drops the file's pages from the page
    cache afterwards (a long fixity check must not push a running crawl's files out).
    """
    hashers = {name: hashlib.new(name) for name in algorithms}
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        advise = getattr(os, "posix_fadvise", None)  # Linux; elsewhere the reads are the same, unadvised
        if advise:
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while n := f.readinto(buf):
            chunk = view[:n]
            for h in hashers.values():
                h.update(chunk)
            size += n
            if progress is not None:
                progress(n)
        if advise and drop_cache:
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return size, {name: h.hexdigest() for name, h in hashers.items()}


def _append_line(path: Path, line: str) -> None:
    """Append one whole line durably: lock, cut a torn tail, one write, fsync."""
    data = line.encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            start = max(0, size - (1 << 16))
            tail = os.pread(fd, size - start, start)
            os.ftruncate(fd, start + tail.rfind(b"\n") + 1)  # after the last whole line
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def record(root: Path, path: Path, sha256: str, size: int) -> Recorded:
    """Append a closed file's digest and size to the manifests of output folder `root`."""
    rel = relative(root, path)
    if is_transient(rel):
        raise ValueError(f"{path}: still being written, not recorded")
    folder = Path(root) / FIXITY_DIR
    new = not folder.is_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if new:
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    name = encode_path(rel)
    # The digest line last: a line in the digest manifest means the file is recorded, size and all.
    _append_line(folder / SIZE_MANIFEST, f"{size}  {name}\n")
    _append_line(folder / DIGEST_MANIFEST, f"{sha256}  {name}\n")
    return Recorded(rel, sha256, size)


def record_closed(root: Path, *paths: Path) -> list[Recorded]:
    """Hash closed files and record them in the manifests of output folder `root`; `.open` files are refused."""
    done = []
    for path in paths:
        if is_transient(path):
            raise ValueError(f"{path}: still being written, not recorded")
        size, digests = hash_file(path)
        done.append(record(root, path, digests["sha256"], size))
    return done


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    """(value, path) of each whole line of a manifest; a torn last line is left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines():
        value, sep, name = line.partition("  ")
        if sep and value:
            yield value, decode_path(name.lstrip(" "))


def load(root: Path) -> dict[str, Recorded]:
    """The newest record of every file named in the manifests of output folder `root`, by relative path."""
    folder = Path(root) / FIXITY_DIR
    sizes = {name: int(value) for value, name in _lines(folder / SIZE_MANIFEST) if value.isdigit()}
    return {name: Recorded(name, value.lower(), sizes.get(name)) for value, name in _lines(folder / DIGEST_MANIFEST)}


def archive_files(root: Path) -> list[str]:
    """The closed files of the output folder's archive subfolders (warc/, items/, reports/), relative paths."""
    found = []
    for sub in ARCHIVE_DIRS:
        base = Path(root) / sub
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if not is_transient(name):
                    found.append(relative(root, Path(dirpath) / name))
    return sorted(found)
