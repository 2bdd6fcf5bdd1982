"""GcFreeze: the objects alive at spider open are frozen, and only when ARCHIVER_GC_FREEZE is on."""

from __future__ import annotations

import gc

import pytest
from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from archiver.tuning.gcfreeze import GcFreeze


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_spider_open_freezes_the_objects_alive_then(unfrozen):
    crawler = get_crawler(Spider)
    extension = GcFreeze.from_crawler(crawler)  # signal handlers are weak references: keep it, as Scrapy does
    alive = [extension]  # a container the collector tracks
    assert gc.get_freeze_count() == 0 and gc.is_tracked(alive)
    crawler.signals.send_catch_log(signals.spider_opened, spider=Spider("s"))
    assert gc.get_freeze_count() > 0
    assert not any(alive is o for g in range(3) for o in gc.get_objects(generation=g))  # in no generation now


def test_off_when_the_setting_says_so(unfrozen):
    with pytest.raises(NotConfigured):
        GcFreeze.from_crawler(get_crawler(Spider, {"ARCHIVER_GC_FREEZE": "False"}))
