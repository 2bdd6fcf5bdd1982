"""Item pipelines: every item is checked against the shipped JSON Schema before it is written."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import fastjsonschema
from itemadapter import ItemAdapter
from jsonschema import Draft202012Validator

from archiver.items.model import item_schema, plain_data

logger = logging.getLogger(__name__)


def item_dict(item: Any) -> dict[str, Any]:
    """The item as plain JSON-like data (dataclass items converted directly: 8x faster than ItemAdapter)."""
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return plain_data(item)
    return ItemAdapter(item).asdict()


class SchemaCheckPipeline:
    """Log and count items that do not match the schema; they are still written, never lost."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats
        schema = item_schema()
        # The compiled check costs ~0.05 ms an item against jsonschema's ~0.7 ms; jsonschema words what is wrong.
        self.check = fastjsonschema.compile(schema)
        self.validator = Draft202012Validator(schema)

    @classmethod
    def from_crawler(cls, crawler: Any) -> SchemaCheckPipeline:
        return cls(crawler.stats)

    def problems(self, data: dict[str, Any]) -> list[str]:
        """What in `data` breaks the schema (empty when it matches)."""
        try:
            self.check(data)
        except fastjsonschema.JsonSchemaException:
            pass
        else:
            return []
        return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in self.validator.iter_errors(data)]

    def process_item(self, item: Any) -> Any:
        data = item_dict(item)
        problems = self.problems(data)
        if problems:
            self.stats.inc_value("archiver/items/schema_invalid")
            logger.error("item %s does not match the schema: %s", data.get("article_id"), "; ".join(problems[:5]))
        return item
