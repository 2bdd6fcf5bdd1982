"""Item pipelines: every item is checked against the shipped JSON Schema before it is written."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import fastjsonschema
from itemadapter import ItemAdapter
from jsonschema import Draft202012Validator

from archiver import config
from archiver.items.model import item_schema

logger = logging.getLogger(__name__)


def item_dict(item: Any, fast: bool = False) -> dict[str, Any]:
    """The item as plain JSON-like data: ItemAdapter's; with `fast`, a dataclass item through `dataclasses.asdict`
    (the same data, without an adapter per nested part)."""
    if fast and dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    return ItemAdapter(item).asdict()


class SchemaCheckPipeline:
    """Log and count items that do not match the schema; they are still written, never lost.

    With `ARCHIVER_SCHEMA_FAST_CHECK` (docs/tuning.md) a compiled validator (fastjsonschema) decides whether an item
    matches and jsonschema only words what is wrong; off, jsonschema checks every item.
    """

    def __init__(self, stats: Any, fast: bool = True) -> None:
        self.stats = stats
        self.fast = fast
        schema = item_schema()
        self.validator = Draft202012Validator(schema)
        self.check: Callable[[Any], Any] | None = fastjsonschema.compile(schema) if fast else None

    @classmethod
    def from_crawler(cls, crawler: Any) -> SchemaCheckPipeline:
        return cls(crawler.stats, fast=config.get(crawler.settings, "ARCHIVER_SCHEMA_FAST_CHECK"))

    def problems(self, data: dict[str, Any]) -> list[str]:
        """What in `data` breaks the schema (empty when it matches)."""
        if self.check is not None:
            try:
                self.check(data)
            except fastjsonschema.JsonSchemaException:
                pass
            else:
                return []
        return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in self.validator.iter_errors(data)]

    def process_item(self, item: Any) -> Any:
        data = item_dict(item, self.fast)
        problems = self.problems(data)
        if problems:
            self.stats.inc_value("archiver/items/schema_invalid")
            logger.error("item %s does not match the schema: %s", data.get("article_id"), "; ".join(problems[:5]))
        return item
