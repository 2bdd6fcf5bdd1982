"""The one shape of archiver's errors: what they are about (a file, a URL, an id) and a short reason."""

from __future__ import annotations

from typing import Any


class ArchiverError(Exception):
    """An error about `subject` with a short, stable `reason` (reports count by it) and optional detail."""

    def __init__(self, subject: Any, reason: str, detail: str = "") -> None:
        self.subject = subject
        self.reason = reason
        self.detail = detail
        head = f"{subject}: {reason}" if subject is not None else reason
        super().__init__(head + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> tuple[type, tuple[Any, str, str]]:
        # Rebuilt from its fields when it crosses a process boundary (the extraction pool).
        return type(self), (self.subject, self.reason, self.detail)
