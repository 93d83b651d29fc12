"""The record selector: where a page's records sit in the response (``()`` for a bare array, ``("issues",)``
for Jira, ``("data", "issues", "nodes")`` for GraphQL), shape-checked, so a wrong body is the upstream's error
with a message that says what came instead, never a crash further down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.requester.reply import json_kind

__all__ = ["RecordSelector", "ShapeError"]


class ShapeError(ValueError):
    """The body does not have the shape the API documents."""


@dataclass(frozen=True)
class RecordSelector:
    path: tuple[str, ...] = ()

    def select(self, body: Any) -> list[Any]:
        node = body
        for depth, key in enumerate(self.path):
            if not isinstance(node, dict):
                raise ShapeError(f"a JSON {json_kind(node)} where {self._at(depth)} should be an object")
            if key not in node:
                raise ShapeError(f"an object without {'.'.join(self.path[:depth + 1])!r}")
            node = node[key]
        if not isinstance(node, list):
            raise ShapeError(f"a JSON {json_kind(node)} where {self._at(len(self.path))} should be an array")
        return node

    def _at(self, depth: int) -> str:
        return f"{'.'.join(self.path[:depth])!r}" if depth else "the body"
