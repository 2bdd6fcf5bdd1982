"""archiver.tuning.eventloop: work that yields with `after_pending_io` resumes after the sockets that were ready."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from archiver.tuning.eventloop import after_pending_io


async def _order(pause: Callable[[], Awaitable[None]]) -> list[str]:
    """What runs first once a coroutine pauses while bytes wait on a socket: its reader or the coroutine."""
    loop = asyncio.get_running_loop()
    reader, writer = socket.socketpair()
    events: list[str] = []
    try:
        loop.add_reader(reader, lambda: events.append(f"read {reader.recv(16)!r}"))
        await asyncio.sleep(0.01)  # the reader is registered and nothing is ready yet
        writer.send(b"ready")  # the socket is readable from now on
        await pause()
        events.append("resumed")
        await asyncio.sleep(0.01)  # a reader left behind gets its turn here
        loop.remove_reader(reader)
    finally:
        reader.close()
        writer.close()
    return events


def test_the_ready_socket_is_served_before_the_work_resumes() -> None:
    assert asyncio.run(_order(after_pending_io)) == ["read b'ready'", "resumed"]


def test_a_plain_sleep_0_would_resume_first() -> None:
    """Why the helper is a timer: `sleep(0)` resumes ahead of the sockets that became ready meanwhile."""
    assert asyncio.run(_order(lambda: asyncio.sleep(0))) == ["resumed", "read b'ready'"]


def _capture_order(tmp_path, yields: bool) -> tuple[list[str], dict]:
    """A page's capture by the WARC middleware while bytes wait on a socket, with its yields on or off."""
    from scrapy.http import HtmlResponse, Request
    from scrapy.utils.test import get_crawler

    from archiver.warc.extension import WarcWriterExtension
    from archiver.warc.middleware import LONG_BODY, WarcCaptureMiddleware

    settings = {
        "ARCHIVER_OUTPUT_DIR": str(tmp_path),
        "ARCHIVER_RUN_ID": "t",
        "ARCHIVER_WARC_CAPTURE_INDEX": "archiver.warc.dedupe:memory_index",
    }
    archive = WarcWriterExtension.from_crawler(get_crawler(settings_dict=settings))
    middleware = WarcCaptureMiddleware(archive, yields=yields)  # what ARCHIVER_CAPTURE_YIELDS gives from_crawler
    request = Request("https://www.dw.com/zh/x/a-1")
    response = HtmlResponse(request.url, body=b"<html><p>" + b"x" * LONG_BODY + b"</p></html>", request=request)

    async def capture() -> None:
        assert await middleware.process_response(request, response) is response

    events = asyncio.run(_order(capture))
    archive.writer.on_close = None  # no index/check process: only the record matters here
    archive.writer.close()
    return events, request.meta["warc_capture"]


def test_the_capture_lets_ready_sockets_go_first_only_when_on(tmp_path) -> None:
    on, captured_on = _capture_order(tmp_path / "on", True)
    off, captured_off = _capture_order(tmp_path / "off", False)
    assert on == ["read b'ready'", "resumed"]
    assert off == ["resumed", "read b'ready'"]
    assert captured_on["record_type"] == captured_off["record_type"] == "response"
    assert captured_on["payload_digest"] == captured_off["payload_digest"]
