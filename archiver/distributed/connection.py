"""The Redis client, key names and worker id of a crawler (one per process, shared by the components)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import redis
from scrapy.settings import BaseSettings

from archiver import config


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis key names under one prefix."""

    prefix: str = "archiver"

    @property
    def jobs(self) -> str:
        """List of pending job JSON (taken from the left)."""
        return f"{self.prefix}:jobs"

    @property
    def workers(self) -> str:
        """Set of worker ids that registered and were not reaped."""
        return f"{self.prefix}:workers"

    @property
    def done(self) -> str:
        """Bitmap by article id: archived (complete or partial) by some worker in some run."""
        return f"{self.prefix}:done"

    @property
    def queued(self) -> str:
        """Bitmap by article id: pushed and not yet failed, so a second feed does not push it again."""
        return f"{self.prefix}:queued"

    @property
    def refs(self) -> str:
        """Prefix of one key per cited article claimed by some worker (expires after the recheck time)."""
        return f"{self.prefix}:refs"

    @property
    def failed(self) -> str:
        """Hash article id -> reason of the last failed attempt."""
        return f"{self.prefix}:failed"

    @property
    def dumps(self) -> str:
        """Hash dump path -> JSON {size, mtime, sha256} of dumps already fed."""
        return f"{self.prefix}:dumps"

    @property
    def dump_digests(self) -> str:
        """Set of sha256 of dumps already fed (a copy under another path is a duplicate)."""
        return f"{self.prefix}:dumps:sha256"

    def processing(self, worker: str) -> str:
        """List of the jobs one worker has taken and not acknowledged."""
        return f"{self.prefix}:processing:{worker}"

    def heartbeat(self, worker: str) -> str:
        """Key that lives while the worker does (expires `ARCHIVER_HEARTBEAT_TTL` after its last beat)."""
        return f"{self.prefix}:heartbeat:{worker}"

    def requests(self, worker: str) -> str:
        """The worker's scrapy-redis scheduler queue."""
        return f"{self.prefix}:requests:{worker}"

    def seen(self, fingerprint: str) -> str:
        """Dupefilter key of one request fingerprint (expires)."""
        return f"{self.prefix}:seen:{fingerprint}"

    def capture(self, url_hash: str) -> str:
        """Digest index hash of one URL."""
        return f"{self.prefix}:capture:{url_hash}"


def keys(settings: BaseSettings) -> Keys:
    """The key names for these settings."""
    return Keys(str(config.get(settings, "ARCHIVER_REDIS_PREFIX")))


def default_worker_id() -> str:
    """`<host>-<pid>`: unique per process, readable in logs and key names."""
    return f"{socket.gethostname()}-{os.getpid()}"


def worker_id(settings: BaseSettings) -> str:
    """This worker's id (`ARCHIVER_WORKER_ID`, else host and pid): the same for every component of the process."""
    return str(config.get(settings, "ARCHIVER_WORKER_ID") or default_worker_id())


def redis_url(settings: BaseSettings) -> str:
    """`REDIS_URL` (the scrapy-redis setting), else the `REDIS_URL` environment variable, else localhost."""
    return settings.get("REDIS_URL") or os.environ.get("REDIS_URL") or "redis://localhost:6379/0"


def client(settings: BaseSettings) -> redis.Redis:
    """A Redis client for `REDIS_URL` that answers str."""
    return redis.Redis.from_url(
        redis_url(settings), decode_responses=True, socket_timeout=30, socket_connect_timeout=30, retry_on_timeout=True
    )
