"""Scale-out over several machines: Redis holds the job queue, the done set, the dupefilter and the digest index.

Every key starts with `ARCHIVER_REDIS_PREFIX`; `keys.Keys` names them all in one place.
"""
