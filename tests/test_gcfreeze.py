"""GcFreeze: the objects alive at spider open are frozen, the young threshold raised while the spider is open."""

from __future__ import annotations

import gc

import pytest
from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from archiver.gcfreeze import GcFreeze


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_spider_open_freezes_the_objects_alive_then(unfrozen):
    crawler = get_crawler(Spider)
    extension = GcFreeze.from_crawler(crawler)  # signal handlers are weak references: keep it, as Scrapy does
    alive = [extension]  # a container the collector tracks
    assert gc.get_freeze_count() == 0 and gc.is_tracked(alive)
    crawler.signals.send_catch_log(signals.spider_opened, spider=Spider("s"))
    assert gc.get_freeze_count() > 0
    assert not any(alive is o for g in range(3) for o in gc.get_objects(generation=g))  # in no generation now


def test_the_young_threshold_is_set_while_the_spider_is_open_and_given_back(unfrozen):
    before = gc.get_threshold()
    crawler = get_crawler(Spider, {"ARCHIVER_GC_FREEZE": "False", "ARCHIVER_GC_GEN0_THRESHOLD": "4321"})
    extension = GcFreeze.from_crawler(crawler)
    spider = Spider("s")
    crawler.signals.send_catch_log(signals.spider_opened, spider=spider)
    try:
        assert gc.get_threshold() == (4321, *before[1:])
        assert gc.get_freeze_count() == 0  # freezing stays off
    finally:
        crawler.signals.send_catch_log(signals.spider_closed, spider=spider, reason="finished")
    assert gc.get_threshold() == before
    del extension


def test_off_when_neither_setting_asks_and_a_negative_threshold_is_refused(unfrozen):
    with pytest.raises(NotConfigured):
        GcFreeze.from_crawler(get_crawler(Spider, {"ARCHIVER_GC_FREEZE": "False", "ARCHIVER_GC_GEN0_THRESHOLD": 0}))
    with pytest.raises(ValueError, match="ARCHIVER_GC_GEN0_THRESHOLD"):
        GcFreeze.from_crawler(get_crawler(Spider, {"ARCHIVER_GC_GEN0_THRESHOLD": -1}))
