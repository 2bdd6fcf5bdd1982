"""The run id: `ARCHIVER_RUN_ID`, else `<spider>-<UTC time>-<pid>`, written once into the settings."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from archiver.timefmt import compact_utc


def new_run_id(spider_name: str) -> str:
    """A fresh run id for a spider started now by this process."""
    return f"{spider_name}-{compact_utc(datetime.now(UTC))}-{os.getpid()}"


def run_id_for(settings: Any, spider_name: str) -> str:
    """The run's id from `ARCHIVER_RUN_ID`, naming a new one into the settings while they can still change."""
    run_id = settings.get("ARCHIVER_RUN_ID")
    if not run_id:
        run_id = new_run_id(spider_name)
        if not settings.frozen:
            settings.set("ARCHIVER_RUN_ID", run_id, priority="spider")
    return str(run_id)
