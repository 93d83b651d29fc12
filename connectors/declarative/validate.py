"""A manifest file read with the position of every key, checked against ``manifest.schema.json``: every problem
at once as ``FILE:LINE:COLUMN: key message``, so a typo in a manifest points at its line, like the tenant file.

(The YAML with positions is ``core/located_yaml.py``, shared with the tenant file's checker.)"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from core.located_yaml import Document, Path_, Problem, dotted, read_document

__all__ = ["SCHEMA_PATH", "Document", "ManifestError", "Problem", "dotted", "load_schema", "read_document",
           "schema_problems"]

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


class ManifestError(ValueError):
    """A manifest is wrong; ``problems`` holds one ``FILE:LINE:COLUMN: key message`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        head = f"{len(problems)} problems in the manifest:\n  " if len(problems) > 1 else ""
        super().__init__(head + "\n  ".join(problems))
        self.problems = problems


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


def schema_problems(doc: Document) -> list[Problem]:
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
