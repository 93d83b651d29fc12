"""MCP tools as tables: a tool's input schema gives filter columns (its required arguments become required
filters), its output schema gives the row columns. A structured result whose schema is an object with exactly one
array-of-objects property (``{"incidents": [...]}``) yields one row per item; any other object is one row. A tool
without an output schema yields its text content as one ``content`` column."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from core.types import ColumnSpec, FilterCap, TableSpec, ops

__all__ = ["McpTable", "arrow_type", "table_for_tool"]

TS = pa.timestamp("us", tz="UTC")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
SCALARS = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


@dataclass(frozen=True)
class McpTable:
    spec: TableSpec
    tool: str
    arguments: dict[str, str]  # column → argument name (scalar arguments only)
    outputs: dict[str, str]  # column → field of each result row
    rows_key: str | None  # the array property holding the rows; None: the result object is the row
    text: bool  # no output schema: the text content is the ``content`` column
    json_columns: frozenset[str]  # object/array fields, kept as JSON text


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/X`` or ``#/definitions/X``), a few levels at most."""
    for _ in range(8):
        if not isinstance(schema, dict) or "$ref" not in schema:
            break
        ref = str(schema["$ref"])
        node: Any = root
        for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else ["?"]:
            node = node.get(part) if isinstance(node, dict) else None
        schema = node
    return schema if isinstance(schema, dict) else {}


def arrow_type(schema: Any, root: Mapping[str, Any]) -> tuple[pa.DataType, bool, bool]:
    """``(type, nullable, as_json)`` of one property; objects and arrays become JSON text."""
    schema = _resolve(schema, root)
    options = [schema]
    if "anyOf" in schema or "oneOf" in schema:
        options = [_resolve(o, root) for o in schema.get("anyOf") or schema.get("oneOf") or ()]
    types: list[str] = []
    for option in options:
        kind = option.get("type")
        types += kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else ["object"]
    nullable = "null" in types
    concrete = [t for t in types if t != "null"]
    if len(set(concrete)) == 1 and concrete[0] in SCALARS:
        if concrete[0] == "string" and any(o.get("format") == "date-time" for o in options):
            return TS, nullable, False
        return SCALARS[concrete[0]], nullable, False
    return pa.string(), True, True


def _rows_key(output: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    props = output.get("properties") if isinstance(output.get("properties"), dict) else {}
    assert isinstance(props, dict)
    if len(props) == 1:
        (key, prop), = props.items()
        prop = _resolve(prop, output)
        items = _resolve(prop.get("items"), output) if prop.get("type") == "array" else {}
        if items.get("type") == "object" or "properties" in items:
            return key, items
    return None, dict(output)


def table_for_tool(schema_name: str, tool: Any) -> McpTable | None:
    """The table of one ``tools/list`` entry, or None when it cannot be one (a name that is not an SQL name, or
    a required argument that is not a scalar)."""
    name = str(tool.name)
    if not _NAME.fullmatch(name):
        return None
    inputs = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    required = set(inputs.get("required") or ())
    columns: dict[str, ColumnSpec] = {}
    outputs: dict[str, str] = {}
    json_columns: set[str] = set()
    output = tool.output_schema if isinstance(getattr(tool, "output_schema", None), dict) else None
    rows_key = None
    if output is not None:
        rows_key, row_schema = _rows_key(output)
        for field, prop in (row_schema.get("properties") or {}).items():
            if not _NAME.fullmatch(field):
                continue
            typ, nullable, as_json = arrow_type(prop, output)
            columns[field] = ColumnSpec(field, typ, str(_resolve(prop, output).get("description", "")))
            outputs[field] = field
            if as_json:
                json_columns.add(field)
    else:
        columns["content"] = ColumnSpec("content", pa.string(), "The tool's text content")
    arguments: dict[str, str] = {}
    for arg, prop in (inputs.get("properties") or {}).items():
        typ, _, as_json = arrow_type(prop, inputs)
        if as_json or not _NAME.fullmatch(arg):
            if arg in required:
                return None
            continue
        cap = FilterCap(ops("=", "IN"), exact=False, required=arg in required, max_in=1,
                        example=f"{arg} = {'1' if typ != pa.string() else repr('value')}")
        existing = columns.get(arg)
        description = str(_resolve(prop, inputs).get("description", "")) or f"tool argument {arg}"
        columns[arg] = ColumnSpec(arg, existing.type if existing else typ,
                                  existing.description if existing and existing.description else description,
                                  filter=cap)
        arguments[arg] = arg
    description = str(getattr(tool, "description", "") or "")[:300]
    spec = TableSpec(schema_name=schema_name, name=name, columns=tuple(columns.values()),
                     description=f"MCP tool {name}: {description}".strip(), row_estimate=100, page_size=1_000_000,
                     limit_pushdown=False)
    return McpTable(spec, name, arguments, outputs, rows_key, output is None, frozenset(json_columns))
