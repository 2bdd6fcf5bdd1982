"""What can go wrong with the state: a file that cannot be used, an output folder held by another run."""

from __future__ import annotations

from typing import Any


class StateError(Exception):
    """The state file cannot be used (e.g. written by a newer archiver)."""


REBUILD_HINT = "scrapy state-rebuild -s ARCHIVER_OUTPUT_DIR={out}"


class StateDamaged(StateError):
    """The state file fails SQLite's integrity check, or is new beside an output folder that holds earlier runs."""


class StateLocked(StateError):
    """Another live process holds the output folder's run lock."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}
