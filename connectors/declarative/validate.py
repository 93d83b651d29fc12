"""A manifest file read with the position of every key, checked against ``manifest.schema.json``: every problem
at once as ``FILE:LINE:COLUMN: key message``, so a typo in a manifest points at its line, like the tenant file.

(The tenant file's checker lives in ``flight_server``, above this layer; this is the same idea at connector level.)"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["SCHEMA_PATH", "Located", "ManifestError", "Problem", "dotted", "load_schema", "read_located",
           "schema_problems"]

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
Path_ = tuple[str | int, ...]


class ManifestError(ValueError):
    """A manifest is wrong; ``problems`` holds one ``FILE:LINE:COLUMN: key message`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        head = f"{len(problems)} problems in the manifest:\n  " if len(problems) > 1 else ""
        super().__init__(head + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    path: Path_
    message: str
    line: int = 0
    column: int = 0

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}:{self.column}" if self.line else file
        key = dotted(self.path)
        sep = "" if self.message.startswith(":") else " "
        return f"{where}: {key}{sep}{self.message}" if key else f"{where}: {self.message.lstrip(': ')}"


@dataclass
class Located:
    """Parsed YAML plus where each key or list item starts (1-based line, column)."""

    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)

    def where(self, path: Path_) -> tuple[int, int]:
        for n in range(len(path), -1, -1):
            if path[:n] in self.positions:
                return self.positions[path[:n]]
        return 0, 0

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(path, message, *self.where(path))


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_located(text: str) -> Located:
    """Parse YAML keeping positions (``yaml.YAMLError`` carries its own line)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = Located(None)
        if node is not None:
            doc.positions[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
            doc.data = _build(loader, node, (), doc)
        return doc
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, doc: Located) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = str(loader.construct_object(key_node, deep=True))
            here = path + (name,)
            position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if name in out:
                doc.duplicates.append(Problem(here, ": appears twice; keep one", *position))
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


@cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
          "object": "a mapping", "array": "a list", "null": "empty"}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _sentences(error: jsonschema.ValidationError) -> Iterator[tuple[Path_, str]]:
    path: Path_ = tuple(error.absolute_path)
    schema, value, kind = error.schema, error.instance, error.validator
    message = schema.get("x-message") if isinstance(schema, Mapping) else None
    if kind == "additionalProperties" and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        for key in sorted(set(value) - set(known)):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            yield path + (key,), ": unknown key" + hint
        return
    if kind == "required":
        for key in error.validator_value:
            if isinstance(value, dict) and key not in value:
                yield path + (key,), "is required"
        return
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        yield path, f"must be {' or '.join(_TYPES.get(str(t), str(t)) for t in expected)}, not {_show(value)}"
        return
    if kind in ("enum", "const"):
        options = [str(o) for o in (error.validator_value if kind == "enum" else [error.validator_value])]
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if message:
            yield path, f": {message} {_show(value)} (known: {', '.join(options)}){hint}"
        else:
            yield path, f"must be one of {', '.join(options)}, not {_show(value)}{hint}"
        return
    if kind in ("minimum", "maximum", "minItems"):
        word = {"minimum": "at least", "maximum": "at most", "minItems": "a list of at least"}[kind]
        yield path, f"must be {word} {error.validator_value}, not {_show(value)}"
        return
    if kind == "pattern":
        yield path, f"{message or 'is not valid'}, not {_show(value)}"
        return
    yield path, error.message


def schema_problems(doc: Located) -> list[Problem]:
    """Every way ``doc`` breaks the manifest schema, in file order."""
    validator = jsonschema.Draft202012Validator(load_schema())
    seen: set[tuple[Path_, str]] = set()
    problems = list(doc.duplicates)
    for error in validator.iter_errors(doc.data if doc.data is not None else {}):
        for path, message in _sentences(error):
            if (path, message) not in seen:
                seen.add((path, message))
                problems.append(doc.problem(path, message))
    return sorted(problems, key=lambda p: (p.line, p.column))
