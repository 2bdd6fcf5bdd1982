"""The run lock: one run per output folder, held with flock on `.lock`, which names its holder."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.state.errors import StateLocked


class RunLock:
    """The output folder's run lock; `acquire` raises `StateLocked` naming the run that holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this process holds the lock through this object."""
        return self._fd is not None

    def acquire(self, run_id: str) -> None:
        """Hold the output folder for this process, or raise `StateLocked` naming the holder."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(fd)
            os.close(fd)
            raise StateLocked(
                f"output folder {self.path.parent} is in use by run {holder.get('run_id', '?')} "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                f"{holder.get('started', '?')}); this run refuses to start. Wait for that run to end or "
                "stop it.",
                holder,
            ) from None
        info = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the file releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_holder(fd: int) -> dict[str, Any]:
    """Who holds the lock, as the holder wrote it into the lock file."""
    for _ in range(20):  # the holder may be between truncate and write
        raw = os.pread(fd, 4096, 0)
        if raw.strip():
            try:
                return dict(json.loads(raw))
            except ValueError:
                pass
        time.sleep(0.01)
    return {}
