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
