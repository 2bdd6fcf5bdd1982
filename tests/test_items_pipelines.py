"""The schema check: a compiled validator on the hot path (ARCHIVER_SCHEMA_FAST_CHECK), jsonschema's words when an
item breaks the schema; with the switch off, jsonschema alone finds the same problems."""

import copy
import dataclasses
import logging

import pytest
from itemadapter import ItemAdapter
from jsonschema import Draft202012Validator
from scrapy.utils.test import get_crawler

from archiver.items.model import item_schema
from archiver.items.pipelines import SchemaCheckPipeline, item_dict
from archiver.run.assemble import Fetched, article_item
from tests.test_run_assemble import API, CAPTURE, IMG, PAGE, parts


def good_item():
    return article_item(
        parts(
            Fetched(PAGE, "page", 200, b"<html>", capture=CAPTURE),
            Fetched(API, "api", 200, b"{}", capture=CAPTURE),
            [Fetched(IMG, "image", 200, b"\xff\xd8", capture=CAPTURE)],
        ),
        run_id="run-1",
    )


def _set(path, value):
    def mutate(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _drop(key):
    return lambda data: data.pop(key)


# Each breaks one rule of the schema: enum, minimum, maximum, type, pattern, required, additionalProperties, ...
BREAKS = {
    "language enum": _set(["language"], "zh"),
    "status enum": _set(["status"], "done"),
    "negative id": _set(["article_id"], -1),
    "agreement above 1": _set(["text_agreement"], 1.5),
    "offset as text": _set(["captures", 0, "offset"], "1234"),
    "capture role": _set(["captures", 1, "role"], "video"),
    "digest pattern": _set(["captures", 0, "payload_digest"], "md5:abc"),
    "missing url": _drop("url"),
    "unknown field": _set(["extra"], 1),
    "repeated references": _set(["references"], [1, 1]),
    "error without reason": lambda d: d["errors"].append({"url": IMG}),
    "kind enum": _set(["kind"], "podcast"),
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_item_dict_equals_itemadapter_and_asdict_and_shares_nothing_with_the_item(fast):
    item = good_item()
    data = item_dict(item, fast)
    assert data == ItemAdapter(item).asdict() == dataclasses.asdict(item)
    assert data["captures"] and data["images"] and data["feed"]  # nested dataclasses in lists are converted
    data["captures"][0]["url"] = "changed"
    data["images"].clear()
    assert item.captures[0].url != "changed" and item.images
    assert item_dict({"a": 1}, fast) == {"a": 1}


def test_a_good_item_has_no_problems():
    assert SchemaCheckPipeline(get_crawler().stats).problems(item_dict(good_item())) == []


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name", sorted(BREAKS))
def test_the_compiled_check_finds_what_jsonschema_finds(name, fast):
    data = copy.deepcopy(item_dict(good_item()))
    BREAKS[name](data)
    expected = list(Draft202012Validator(item_schema()).iter_errors(data))
    assert expected, f"{name}: the mutation should break the schema"
    problems = SchemaCheckPipeline(get_crawler().stats, fast=fast).problems(data)
    assert len(problems) == len(expected)  # non-empty only when the compiled check refused the item too
    assert all(":" in p for p in problems)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_process_item_counts_and_logs_a_bad_item_and_passes_it_on(caplog, fast):
    crawler = get_crawler(settings_dict={"ARCHIVER_SCHEMA_FAST_CHECK": str(fast)})
    pipeline = SchemaCheckPipeline.from_crawler(crawler)
    assert (pipeline.check is not None) is fast  # ARCHIVER_SCHEMA_FAST_CHECK: the compiled check only when on
    good, bad = good_item(), good_item()
    bad.status = "done"
    with caplog.at_level(logging.ERROR, logger="archiver.items.pipelines"):
        assert pipeline.process_item(good) is good
        assert pipeline.process_item(bad) is bad
    assert crawler.stats.get_value("archiver/items/schema_invalid") == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"item {bad.article_id} does not match the schema: status: 'done' is not one of "
        "['complete', 'partial', 'failed']"
    ]
