"""Pruned parsing (connectors/requester/pruned.py) gives the decoder exactly what a full orjson parse gives it for
the fields a table reads, and leaves every body it cannot vouch for to orjson."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest

from connectors.decode import WireField, decode_page, wire_type
from connectors.requester.pruned import UNPRUNED, pruned_body
from core.errors import UpstreamError

SCHEMA = pa.schema([("number", pa.int64()), ("author", pa.string()), ("repo", pa.string()),
                    ("labels", pa.list_(pa.string())), ("merged_at", pa.timestamp("us", tz="UTC"))])
WIRE = {"number": WireField(("number",)), "author": WireField(("user", "login")),
        "repo": WireField(("base", "repo", "name")), "labels": WireField(("labels",), "names"),
        "merged_at": WireField(("merged_at",), "timestamp")}
RECORD = wire_type(SCHEMA, WIRE)

RECORDS: list[Any] = [
    {"number": 1, "user": {"login": "ana", "id": 7, "site_admin": False}, "base": {"repo": {"name": "web", "x": [1]}},
     "labels": [{"name": "bug", "color": "f00"}, {"name": "ui"}], "merged_at": "2026-01-02T03:04:05Z", "body": "…"},
    {"number": 2, "user": None, "base": {"repo": None}, "labels": [], "merged_at": None},
    {"number": 3},  # fields missing altogether
    {"number": 4, "user": {"login": "zoë \"q\""}, "base": {"repo": {"name": "ü"}}, "labels": None,
     "extra": {"deep": [{"a": 1}]}},
    {"number": 2**63 - 1, "user": {"login": ""}, "labels": [{"name": None}]},
]


def _decoded(body: Any) -> dict[str, list[Any]]:
    return {k: v.to_pylist() for k, v in decode_page(body, SCHEMA, WIRE, "test").items()}


def test_pruned_records_decode_exactly_as_fully_parsed_ones() -> None:
    content = orjson.dumps(RECORDS)
    pruned = pruned_body(content, (), RECORD)
    assert pruned is not UNPRUNED
    assert _decoded(pruned) == _decoded(orjson.loads(content))
    assert "body" not in pruned[0] and "id" not in pruned[0]["user"]  # what no column reads is not built


def test_records_under_a_path() -> None:
    content = orjson.dumps({"total": 5, "items": RECORDS, "next": "x"})
    pruned = pruned_body(content, ("items",), RECORD)
    assert pruned.keys() == {"items"} and _decoded(pruned["items"]) == _decoded(RECORDS)


@pytest.mark.parametrize("content, at", [
    (b"not json", ()),
    (b'[{"number": 1}', ()),  # truncated
    (b'[{"number": 123456789012345678901234567890}]', ()),  # past 64 bits: orjson refuses it too
    (b'[{"number": 1, "user": {"login": "\xff"}}]', ()),  # invalid UTF-8
    (b'{"items": 3}', ("items",)),  # not an array where the records should be
    (b'[1, 2]', ("items",)),  # not an object on the path
    (b'{"other": []}', ("items",)),
])
def test_bodies_simdjson_cannot_vouch_for_are_left_to_orjson(content: bytes, at: tuple[str, ...]) -> None:
    assert pruned_body(content, at, RECORD) is UNPRUNED


def test_a_record_of_the_wrong_shape_is_still_the_upstreams_error() -> None:
    for bad in ([{"number": "seven"}], [{"number": 1, "user": "ana"}], [{"number": 1, "labels": {"name": "x"}}], [5]):
        content = orjson.dumps(bad)
        pruned = pruned_body(content, (), RECORD)
        with pytest.raises(UpstreamError):
            decode_page(orjson.loads(content), SCHEMA, WIRE, "test")
        with pytest.raises(UpstreamError):
            decode_page(pruned, SCHEMA, WIRE, "test")
