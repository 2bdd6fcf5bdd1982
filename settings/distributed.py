"""Several machines, one archive: scrapy-redis scheduler, jobs from Redis, Redis dupefilter and digest index.

Run the feeder once (`scrapy feed-redis DUMPS...`) and any number of workers with
`SCRAPY_SETTINGS_MODULE=settings.distributed scrapy crawl feeddump`; set `REDIS_URL` (environment or setting).
Each worker writes its own WARC, item and report files below `ARCHIVER_OUTPUT_DIR`. See docs/distributed.md.
"""

import os

from settings.default import *  # noqa: F403

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

# Jobs come from Redis (archiver.distributed.source), not from the spider's dump arguments.
ARCHIVER_READ_DUMPS = False
EXTENSIONS = {**EXTENSIONS, "archiver.distributed.source.RedisJobSource": 600}  # noqa: F405 - after FeedExporter

# scrapy-redis scheduler, one persisted queue per worker (SCHEDULER_PERSIST=False would let a finishing worker
# flush shared keys); no blocking pop on the reactor (SCHEDULER_IDLE_BEFORE_CLOSE stays 0).
SCHEDULER = "archiver.distributed.scheduler.WorkerScheduler"
SCHEDULER_PERSIST = True
SCHEDULER_IDLE_BEFORE_CLOSE = 0
SCHEDULER_QUEUE_CLASS = "scrapy_redis.queue.FifoQueue"

# Bounded dupefilter: an expiring key per fingerprint instead of scrapy-redis's ever-growing set.
DUPEFILTER_CLASS = "archiver.distributed.dupefilter.ExpiringDupeFilter"

# A cited article is fetched by the first worker that claims it (per recheck period), not by every worker.
ARCHIVER_REFERENCE_CLAIMS = "archiver.distributed.source:reference_claims"

# Revisits name captures made by any worker in any run.
ARCHIVER_WARC_CAPTURE_INDEX = "archiver.distributed.digests:capture_index"

# Item files stay unbuffered (settings.default's FEED_STORAGES): an acknowledged job's item survives kill -9.
