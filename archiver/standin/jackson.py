"""JSON as api.dw.com writes it: Jackson's default pretty printer (`"key" : value`, `[ {`, raw UTF-8)."""

from __future__ import annotations

import json
from typing import Any

INDENT = "  "


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write(value: Any, level: int, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{ }")
            return
        out.append("{\n")
        for i, (key, item) in enumerate(value.items()):
            out.append(INDENT * (level + 1) + json.dumps(str(key), ensure_ascii=False) + " : ")
            _write(item, level + 1, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append(INDENT * level + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[ ]")
            return
        # Jackson keeps array elements on the opening line; nested objects indent from the array's level.
        out.append("[ ")
        for i, item in enumerate(value):
            _write(item, level, out)
            if i < len(value) - 1:
                out.append(", ")
        out.append(" ]")
    else:
        out.append(_scalar(value))


def dumps(value: Any) -> str:
    """Serialize like Jackson's `DefaultPrettyPrinter`; no trailing newline."""
    out: list[str] = []
    _write(value, 0, out)
    return "".join(out)
