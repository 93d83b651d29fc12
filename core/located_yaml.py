"""YAML read with the position of every key and list item, so a checker can say ``FILE:LINE:COLUMN: key message``.
The tenant file (``flight_server/tenant_schema.py``) and connector manifests (``connectors/declarative/``) both
read their YAML through this, each with its own schema and wording for what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Document", "Path_", "Problem", "dotted", "read_document"]

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    path: Path_
    message: str  # begins with what follows the key: "must be ...", "is required", ": unknown key; ..."
    line: int = 0  # 1-based; 0 when unknown
    column: int = 0

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}:{self.column}" if self.line else file
        key = dotted(self.path)
        sep = "" if not key or self.message.startswith(":") else " "
        return f"{where}: {key}{sep}{self.message}" if key else f"{where}: {self.message.lstrip(': ')}"


@dataclass
class Document:
    """The parsed YAML (plain dicts, lists and scalars) and where each key or item starts."""

    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)

    def where(self, path: Path_) -> tuple[int, int]:
        """The position of ``path``, else of its closest ancestor that has one."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.positions:
                return self.positions[path[:n]]
        return 0, 0

    def problem(self, path: Path_, message: str) -> Problem:
        line, column = self.where(path)
        return Problem(path, message, line, column)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_document(text: str) -> Document:
    """Parse YAML keeping positions (raises ``yaml.YAMLError`` with its own line and column)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = Document(None)
        if node is not None:
            doc.positions[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
            doc.data = _build(loader, node, (), doc)
        return doc
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, doc: Document) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # merge keys (<<: *anchor)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            name = str(key) if not isinstance(key, str) else key
            here = path + (name,)
            position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if name in out:
                first = doc.positions.get(here, (0, 0))[0]
                doc.duplicates.append(Problem(here, f": appears twice (first on line {first}); keep one",
                                              *position))
            doc.positions[here] = position
            out[name] = _build(loader, value_node, here, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            doc.positions[path + (i,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_build(loader, item, path + (i,), doc))
        return items
    return loader.construct_object(node, deep=True)
