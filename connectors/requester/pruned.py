"""Parse a page keeping only what a table reads.

GitHub's pull request listing carries ~2.5 KB of nested user and repository objects per row that no column reads;
turning all of it into Python objects (orjson) was ~40% of a listing's CPU. simdjson parses the body without
building Python objects, and only the fields of the records' wire type (``connectors.decode.wire_type``) become
Python values — the same values orjson gives for them, so decoding and shape checks are unchanged. Anything
simdjson cannot take (not JSON, an integer past 64 bits, invalid UTF-8, a body not shaped as the path says) is
left to orjson, whose verdict and error stand.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pyarrow as pa
import simdjson

__all__ = ["UNPRUNED", "pruned_body"]

UNPRUNED = object()  # pruned_body's answer when the body must be parsed in full instead


def pruned_body(content: bytes, at: tuple[str, ...], record: pa.DataType) -> Any:
    """The body as orjson would parse it, except that the array at ``at`` holds records pruned to ``record``'s
    fields (and everything beside the path is left out); ``UNPRUNED`` when simdjson cannot say."""
    try:
        document = simdjson.Parser().parse(content)  # a parser per body: its document dies with the next parse
    except (ValueError, RuntimeError):
        return UNPRUNED
    node = document
    for key in at:
        if not isinstance(node, simdjson.Object) or key not in node:
            return UNPRUNED
        node = node[key]
    if not isinstance(node, simdjson.Array):
        return UNPRUNED
    shape = _shape(record)
    body: Any = [_pruned(item, shape) for item in node]
    for key in reversed(at):
        body = {key: body}
    return body


# What to keep of a value: None (all of it: a leaf), a tuple of (field, shape) pairs (an object's fields), or a
# one-element list [shape] (an array's items). Plain Python, so walking a record costs no pyarrow calls.
Shape = tuple[tuple[str, "Shape"], ...] | list["Shape"] | None


@lru_cache(maxsize=256)
def _shape(type_: pa.DataType) -> Shape:
    if pa.types.is_struct(type_):
        return tuple((field.name, _shape(field.type)) for field in type_)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return [_shape(type_.value_type)]
    return None


def _pruned(value: Any, shape: Shape) -> Any:
    if isinstance(value, simdjson.Object):
        if isinstance(shape, tuple):
            get = value.get
            return {name: _pruned(get(name), inner) for name, inner in shape}
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        if isinstance(shape, list):
            inner = shape[0]
            return [_pruned(item, inner) for item in value]
        return value.as_list()
    return value
