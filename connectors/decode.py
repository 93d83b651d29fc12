"""Decode JSON pages into Arrow in one conversion per page, then map wire fields to table columns with
Arrow compute. The only per-row Python is the JSON parse itself; everything after is vectorized."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from core.errors import UpstreamError

__all__ = ["WireField", "decode_failure", "decode_page", "map_values", "wire_type"]

_TARGET_TYPE = re.compile(r"(?:tried to convert to|as a scalar of type) ([a-z0-9_]+(?:\[[^\]']*\])?)")


@dataclass(frozen=True)
class WireField:
    """Where a column lives in the API's JSON, and how its text becomes the column type.

    ``convert``: ``None`` (already the right type), ``"timestamp"`` (ISO 8601 text → UTC timestamp), or
    ``"names"`` (a list of objects with a ``name`` → list of strings, e.g. GitHub labels)."""

    path: tuple[str, ...]
    convert: str | None = None


def _leaf_type(target: pa.DataType, convert: str | None) -> pa.DataType:
    if convert == "timestamp":
        return pa.string()
    if convert == "names":
        return pa.list_(pa.struct([("name", pa.string())]))
    return target


def wire_type(schema: pa.Schema, fields: Mapping[str, WireField]) -> pa.StructType:
    """The nested struct type that ``pa.array`` should parse a page into (only the fields we need)."""
    tree: dict[str, Any] = {}
    for column in schema.names:
        if column not in fields:
            continue
        spec = fields[column]
        node = tree
        for part in spec.path[:-1]:
            node = node.setdefault(part, {})
        node[spec.path[-1]] = _leaf_type(schema.field(column).type, spec.convert)

    def build(node: dict[str, Any]) -> pa.StructType:
        return pa.struct([(k, build(v) if isinstance(v, dict) else v) for k, v in node.items()])

    return build(tree)


def _extract(array: pa.Array, path: Sequence[str]) -> pa.Array:
    for part in path:
        array = pc.struct_field(array, part)
    return array


def _convert(array: pa.Array, target: pa.DataType, convert: str | None) -> pa.Array:
    if convert == "timestamp":
        return array.cast(pa.timestamp("us", tz="UTC")).cast(target)
    if convert == "names":
        lists = array.cast(pa.list_(pa.struct([("name", pa.string())])))
        names = pc.struct_field(lists.flatten(), "name")
        return pa.ListArray.from_arrays(lists.offsets, names, mask=lists.is_null()).cast(target)
    return array if array.type == target else array.cast(target)


def decode_page(items: list[Any], schema: pa.Schema, fields: Mapping[str, WireField], source: str
                ) -> dict[str, pa.Array]:
    """Decode one page's records into the wire-mapped columns of ``schema`` (others are left to the caller).

    Records of the wrong shape (not objects, a text where a number belongs, a malformed timestamp) are the
    upstream's fault: ``UpstreamError`` naming the source, never a crash."""
    try:
        struct = pa.array(items, type=wire_type(schema, fields))
        return {name: _convert(_extract(struct, fields[name].path), schema.field(name).type, fields[name].convert)
                for name in schema.names if name in fields}
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise UpstreamError(f"{source} returned records that do not match its API contract "
                            f"({decode_failure(exc)}); retry later, or report it if it persists") from exc


def decode_failure(exc: BaseException) -> str:
    """What went wrong turning upstream records into Arrow, for an error message: the exception's kind and the
    type a value did not fit, never Arrow's own text, which quotes the value (``Could not convert 'ana@x.io'
    ...``): a value of a row the principal's row filter hides, or of a column masked or denied for it."""
    found = _TARGET_TYPE.findall(str(exc))  # the last: Arrow names the type after the value it quotes
    return f"{type(exc).__name__}: a value that is not {found[-1]}" if found else type(exc).__name__


def map_values(keys: pa.Array, mapping: Mapping[str, str | None]) -> pa.Array:
    """Vectorized dictionary lookup (e.g. project key → team); unknown keys become null."""
    lookup_keys = pa.array(list(mapping), pa.string())
    lookup_values = pa.array(list(mapping.values()), pa.string())
    return pc.take(lookup_values, pc.index_in(keys, value_set=lookup_keys))
