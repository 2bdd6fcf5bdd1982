"""Item pipelines: every item is checked against the shipped JSON Schema before it is written."""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from jsonschema import Draft202012Validator

from archiver.items import item_schema

logger = logging.getLogger(__name__)


class SchemaCheckPipeline:
    """Log and count items that do not match the schema; they are still written, never lost."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats
        self.validator = Draft202012Validator(item_schema())

    @classmethod
    def from_crawler(cls, crawler: Any) -> SchemaCheckPipeline:
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        data = ItemAdapter(item).asdict()
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in self.validator.iter_errors(data)
        ]
        if problems:
            self.stats.inc_value("archiver/items/schema_invalid")
            logger.error("item %s does not match the schema: %s", data.get("article_id"), "; ".join(problems[:5]))
        return item
