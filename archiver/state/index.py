"""The WARC writer's digest index served by the state, so revisits name captures of earlier runs."""

from __future__ import annotations

from typing import Any

from archiver.state.extension import StateExtension
from archiver.state.store import CaptureRow, State


class StateCaptureIndex:
    """The WARC writer's digest index (`archiver.warc.dedupe.CaptureIndex`) served by the state, across runs.

    Built while the extensions are being built, it finds the crawler's state on first use.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @property
    def state(self) -> State:
        return State.for_crawler(self.crawler)

    def last_capture(self, url: str) -> CaptureRow | None:
        """The newest full 200 response of `url` (what a 304 confirms), or None."""
        return self.state.last_capture(url, statuses=(200,), record_type="response")

    def find_by_digest(self, url: str, payload_digest: str) -> CaptureRow | None:
        """The first full response of `url` with this payload digest, or None."""
        return self.state.find_by_digest(url, payload_digest)

    def add_capture(self, ref: Any) -> None:
        """Record a written record (a CaptureRef or CaptureRow); validators and run id when it has them."""
        self.state.add_capture(CaptureRow.from_ref(ref, self.state.run_id))


def capture_index(crawler: Any) -> StateCaptureIndex:
    """Factory for ARCHIVER_WARC_CAPTURE_INDEX (`archiver.state:capture_index`): revisits across runs."""
    from scrapy.utils.conf import build_component_list
    from scrapy.utils.misc import load_object

    extensions = build_component_list(crawler.settings.getwithbase("EXTENSIONS"))
    if not any(issubclass(load_object(component), StateExtension) for component in extensions):
        raise ValueError("ARCHIVER_WARC_CAPTURE_INDEX names the state, which needs StateExtension in EXTENSIONS")
    return StateCaptureIndex(crawler)
