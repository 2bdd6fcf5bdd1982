"""A small file system that fills up: a size-limited tmpfs where mounts are allowed (root), otherwise a file-size
limit (RLIMIT_FSIZE) on the crawl's process, which fails its writes with EFBIG past the limit."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SmallDisk:
    """A folder whose writes fail once `size` bytes are used."""

    path: Path
    size: int
    mounted: bool

    def grow(self, size: int) -> None:
        """Make room: a larger tmpfs (contents kept), or a larger process limit."""
        self.size = size
        if self.mounted:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def preexec(self) -> Callable[[], None] | None:
        """For `subprocess.run(preexec_fn=...)`: the file-size limit when there is no tmpfs."""
        if self.mounted:
            return None
        limit = self.size

        def limit_files() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return limit_files


def can_mount(path: Path) -> bool:
    if os.geteuid() != 0:
        return False
    probe = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True)
    if probe.returncode != 0:
        return False
    subprocess.run(["umount", str(path)], check=True)
    return True


@contextmanager
def small_disk(path: Path, size: int) -> Iterator[SmallDisk]:
    """`path` (created) as a file system of `size` bytes while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = can_mount(path)
    if mounted:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield SmallDisk(path, size, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)
