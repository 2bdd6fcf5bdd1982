"""The reliable job queue: pending jobs, per-worker processing lists, heartbeats, the reaper and the done bitmap.

Each operation is one Lua script, so a worker killed between two calls leaves every job in exactly one list.
Article ids index bitmaps (`done`, `queued`): exact, and never larger than the highest id / 8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from archiver.distributed.connection import Keys
from archiver.run.jobs import ArticleJob

# KEYS: jobs, queued, done; ARGV: job JSON, article id, force (1/0). Returns 1 when pushed.
_PUSH = """
if ARGV[3] ~= '1' and (redis.call('GETBIT', KEYS[3], ARGV[2]) == 1 or redis.call('GETBIT', KEYS[2], ARGV[2]) == 1) then
  return 0
end
redis.call('SETBIT', KEYS[2], ARGV[2], 1)
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""

# KEYS: jobs, processing, done; ARGV: how many. Jobs of archived articles are dropped unless they are rechecks.
# Returns {skipped_done, {job JSON...}}.
_TAKE = """
local taken, skipped = {}, 0
while #taken < tonumber(ARGV[1]) do
  local job = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not job then break end
  local decoded = cjson.decode(job)
  if decoded['recheck'] ~= true and redis.call('GETBIT', KEYS[3], decoded['article_id']) == 1 then
    redis.call('RPOP', KEYS[2])
    skipped = skipped + 1
  else
    taken[#taken + 1] = job
  end
end
return {skipped, taken}
"""

# KEYS: processing, done, queued, failed; ARGV: job JSON, article id, ok (1/0), reason. Returns 1 when it was held.
_ACK = """
local held = redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[3] == '1' then
  redis.call('SETBIT', KEYS[2], ARGV[2], 1)
  redis.call('HDEL', KEYS[4], ARGV[2])
else
  redis.call('SETBIT', KEYS[3], ARGV[2], 0)
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
end
return held
"""

# Requeue one worker's jobs at the head of the queue and forget the worker.
_REQUEUE_ONE = """
local function requeue(prefix, jobs_key, workers_key, w)
  local p = prefix .. ':processing:' .. w
  local jobs = redis.call('LRANGE', p, 0, -1)
  for i = #jobs, 1, -1 do redis.call('LPUSH', jobs_key, jobs[i]) end
  redis.call('DEL', p, prefix .. ':requests:' .. w, prefix .. ':heartbeat:' .. w)
  redis.call('SREM', workers_key, w)
  return #jobs
end
"""

# KEYS: jobs, workers; ARGV: prefix, worker. Returns how many jobs went back.
_REQUEUE = _REQUEUE_ONE + "return requeue(ARGV[1], KEYS[1], KEYS[2], ARGV[2])"

# KEYS: jobs, workers; ARGV: prefix. Requeues every worker without heartbeat. Returns {moved, {worker...}}.
_REAP = (
    _REQUEUE_ONE
    + """
local moved, reaped = 0, {}
for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[1] .. ':heartbeat:' .. w) == 0 then
    moved = moved + requeue(ARGV[1], KEYS[1], KEYS[2], w)
    reaped[#reaped + 1] = w
  end
end
return {moved, reaped}
"""
)

# KEYS: jobs, workers; ARGV: prefix. Jobs pending plus jobs held by any worker.
_OUTSTANDING = """
local n = redis.call('LLEN', KEYS[1])
for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  n = n + redis.call('LLEN', ARGV[1] .. ':processing:' .. w)
end
return n
"""


@dataclass(slots=True)
class Taken:
    """Jobs one `take` moved into the worker's processing list (raw JSON kept for the ack)."""

    jobs: list[tuple[str, ArticleJob]] = field(default_factory=list)
    skipped_done: int = 0


class JobQueue:
    """Pending jobs, their owners and what is done, in one Redis (a single instance, not a cluster)."""

    def __init__(self, conn: redis.Redis, keys: Keys) -> None:
        self.conn = conn
        self.keys = keys
        self._push = conn.register_script(_PUSH)
        self._take = conn.register_script(_TAKE)
        self._ack = conn.register_script(_ACK)
        self._requeue = conn.register_script(_REQUEUE)
        self._reap = conn.register_script(_REAP)
        self._outstanding = conn.register_script(_OUTSTANDING)

    # --- feeder ---

    def push(self, job: ArticleJob, *, force: bool = False) -> bool:
        """Queue a job unless its article is done or already queued; `force` queues it as a recheck."""
        if force:
            job.recheck = True
        k = self.keys
        args = [job.to_json(), job.article_id, int(force)]
        return bool(self._push(keys=[k.jobs, k.queued, k.done], args=args))

    def is_done(self, article_id: int) -> bool:
        """Whether some worker archived the article."""
        return bool(self.conn.getbit(self.keys.done, article_id))

    def is_queued(self, article_id: int) -> bool:
        """Whether the article was pushed and has not failed since."""
        return bool(self.conn.getbit(self.keys.queued, article_id))

    # --- workers ---

    def beat(self, worker: str, ttl: float) -> bool:
        """Register the worker and renew its heartbeat; False when it had been reaped (or is new)."""
        pipe = self.conn.pipeline()
        pipe.set(self.keys.heartbeat(worker), "1", px=int(ttl * 1000))
        pipe.sadd(self.keys.workers, worker)
        _, added = pipe.execute()
        return not added

    def take(self, worker: str, count: int) -> Taken:
        """Move up to `count` jobs into the worker's processing list; jobs of archived articles are dropped
        unless they are rechecks. The worker must have beaten first (`beat`)."""
        if count <= 0:
            return Taken()
        k = self.keys
        skipped, raws = self._take(keys=[k.jobs, k.processing(worker), k.done], args=[count])
        return Taken([(raw, ArticleJob.from_json(raw)) for raw in raws], int(skipped))

    def ack(self, worker: str, raw: str, article_id: int, *, ok: bool, reason: str = "") -> bool:
        """Drop a finished job from the worker's list; mark it done when `ok`, else record why it failed."""
        k = self.keys
        held = self._ack(
            keys=[k.processing(worker), k.done, k.queued, k.failed], args=[raw, article_id, int(ok), reason]
        )
        return bool(held)

    def drop(self, worker: str, raw: str) -> bool:
        """Drop a held job without marking its article (a second copy of a job the worker already runs)."""
        return bool(self.conn.lrem(self.keys.processing(worker), 1, raw))

    def give_back(self, worker: str, raw: str) -> bool:
        """Put one held job back at the head of the queue (the worker lost track of it, e.g. a reply lost)."""
        pipe = self.conn.pipeline()
        pipe.lrem(self.keys.processing(worker), 1, raw)
        pipe.lpush(self.keys.jobs, raw)
        removed, _ = pipe.execute()
        if not removed:  # not held after all: undo the push
            self.conn.lrem(self.keys.jobs, 1, raw)
        return bool(removed)

    def requeue(self, worker: str) -> int:
        """Put back every job the worker holds (at the head of the queue) and forget the worker."""
        return int(self._requeue(keys=[self.keys.jobs, self.keys.workers], args=[self.keys.prefix, worker]))

    def reap(self) -> tuple[int, list[str]]:
        """Requeue the jobs of every worker whose heartbeat expired: (jobs moved, workers reaped)."""
        moved, reaped = self._reap(keys=[self.keys.jobs, self.keys.workers], args=[self.keys.prefix])
        return int(moved), list(reaped)

    def claim_reference(self, article_id: int, ttl: float = 0) -> bool:
        """Claim a cited article: True only for the first claim across all workers within `ttl` s (0 = ever)."""
        return bool(self.conn.set(f"{self.keys.refs}:{article_id}", "", nx=True, px=int(ttl * 1000) or None))

    # --- observation ---

    def pending(self) -> int:
        """Jobs waiting to be taken."""
        return int(self.conn.llen(self.keys.jobs))

    def outstanding(self) -> int:
        """Jobs pending or held by a worker: work that may still come back to the queue."""
        return int(self._outstanding(keys=[self.keys.jobs, self.keys.workers], args=[self.keys.prefix]))

    def held(self, worker: str) -> list[str]:
        """The raw jobs a worker holds."""
        return list(self.conn.lrange(self.keys.processing(worker), 0, -1))

    def status(self) -> dict[str, object]:
        """Counts for a human: pending, held per worker, alive workers, done and failed articles."""
        k = self.keys
        workers = sorted(self.conn.smembers(k.workers))
        return {
            "pending": self.pending(),
            "held": {w: int(self.conn.llen(k.processing(w))) for w in workers},
            "alive": [w for w in workers if self.conn.exists(k.heartbeat(w))],
            "done": int(self.conn.bitcount(k.done)),
            "failed": int(self.conn.hlen(k.failed)),
        }
