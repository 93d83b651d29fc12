"""A page of JSON records → Arrow columns in one conversion: the records are parsed into one nested struct array
holding only the paths the columns need (nested objects flattened by path), then each column is a struct-field
extraction plus a cast. Per-row Python happens only for ``json`` columns (kept as JSON text)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.declarative.manifest import ColumnDef
from connectors.decode import decode_failure
from core.errors import UpstreamError

__all__ = ["decode_records"]

TS = pa.timestamp("us", tz="UTC")


def _leaf(column: ColumnDef) -> pa.DataType:
    """The type the JSON value is parsed as, before conversion to the column's type."""
    if column.kind == "timestamp":
        return pa.float64() if column.format in ("epoch_s", "epoch_ms") else pa.string()
    if column.kind == "date":
        return pa.string()
    if column.kind.startswith("list<") and column.item:
        return pa.list_(pa.struct([(column.item, column.type.value_type)]))
    return column.type


def _tree(columns: Sequence[ColumnDef]) -> pa.StructType:
    root: dict[str, Any] = {}
    for column in columns:
        node = root
        for part in column.path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a path below another column's leaf: that column wins the node
                break
            node = child
        else:
            node.setdefault(column.path[-1], _leaf(column))

    def build(node: dict[str, Any]) -> pa.StructType:
        return pa.struct([(k, build(v) if isinstance(v, dict) else v) for k, v in node.items()])

    return build(root)


def _convert(array: pa.Array, column: ColumnDef) -> pa.Array:
    if column.kind == "timestamp":
        if column.format == "epoch_s":
            return pc.multiply(array, 1_000_000).cast(pa.int64()).cast(TS)
        if column.format == "epoch_ms":
            return pc.multiply(array, 1_000).cast(pa.int64()).cast(TS)
        return array.cast(TS)
    if column.kind.startswith("list<") and column.item:
        values = pc.struct_field(array.flatten(), column.item)
        return pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null()).cast(column.type)
    return array if array.type == column.type else array.cast(column.type)


def _json_column(records: Sequence[Any], column: ColumnDef) -> pa.Array:
    out: list[str | None] = []
    for record in records:
        node = record
        for part in column.path:
            node = node.get(part) if isinstance(node, dict) else None
        out.append(None if node is None else json.dumps(node, sort_keys=True))
    return pa.array(out, pa.string())


def decode_records(records: Sequence[Any], columns: Sequence[ColumnDef], source: str) -> dict[str, pa.Array]:
    """The ``columns`` of one page. A record of the wrong shape is the upstream's fault: ``UpstreamError``."""
    plain = [c for c in columns if c.kind != "json"]
    try:
        out: dict[str, pa.Array] = {}
        if plain:
            struct = pa.array(records, type=_tree(plain))
            for column in plain:
                array: pa.Array = struct
                for part in column.path:
                    array = pc.struct_field(array, part)
                out[column.name] = _convert(array, column)
        for column in columns:
            if column.kind == "json":
                out[column.name] = _json_column(records, column)
        return out
    except (pa.ArrowException, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamError(f"{source} returned records that do not match its manifest's columns "
                            f"({decode_failure(exc)}); check the manifest's paths and types, or "
                            "retry later") from exc
