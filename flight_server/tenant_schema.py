"""The tenant YAML checked against its JSON Schema (``flight_server/tenant.schema.json``, published as
``schemas/tenant.schema.json`` for editors), with every problem reported at once as ``FILE:LINE:COLUMN: key
message`` — unknown keys with a "did you mean", wrong types, values out of range, and every ``*_env`` variable that
is not set.

The YAML is read by PyYAML's composer, which keeps each node's position, so a problem points at the line of the
key that is wrong. The schema covers the shape of the file; what it cannot say (a row filter that is not SQL, a
JWKS URL that is not https) is still checked by the section's own parser, and ``locate`` finds that key's line."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from core.located_yaml import Document, Path_, Problem, dotted, read_document

__all__ = ["SCHEMA_PATH", "Document", "Problem", "check", "env_problems", "load_schema", "locate", "read_document",
           "schema_problems"]

SCHEMA_PATH = Path(__file__).with_name("tenant.schema.json")
OPTIONAL_ENV = frozenset({"secret_env"})  # unset: tickets are signed with a random key per start (documented)


@cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


# -- schema errors as sentences ----------------------------------------------------------------------------------
_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
          "object": "a mapping", "array": "a list", "null": "empty"}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{shown!r}"
    return repr(value)


def _known_keys(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    keys = list(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        keys += _known_keys(root["$defs"][ref.split("/")[-1]], root)
    return keys


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else (f" (known: {', '.join(candidates)})" if candidates else "")


def _sentences(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    path: Path_ = tuple(error.absolute_path)
    schema, value, kind = error.schema, error.instance, error.validator
    custom = schema.get("x-messages", {}).get(kind) if isinstance(schema, Mapping) else None
    if kind == "additionalProperties" and schema.get("additionalProperties") is False:
        known = _known_keys(schema, root)
        for key in sorted(set(value) - set(known)):
            yield path + (key,), ": unknown key" + _suggest(key, known)
        return
    if kind == "required":
        for key in error.validator_value:
            if key not in value:
                yield path + (key,), custom or "is required"
        return
    if "propertyNames" in error.schema_path:  # a key that is not a valid name (the error is about the key)
        names = error.parent.schema.get("propertyNames", {}) if error.parent is not None else {}
        yield path + (str(value),), ": " + str(names.get("x-message") or schema.get("x-message")
                                               or "is not a valid name")
        return
    message = schema.get("x-message") if isinstance(schema, Mapping) else None
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        text = " or ".join(_TYPES.get(str(t), str(t)) for t in expected)
        hint = ""
        if "boolean" in expected and isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "true",
                                                                                   "false"):
            hint = " (quoted, it is a string: write true or false without quotes)"
        yield path, f"must be {text}, not {_describe(value)}{hint}"
        return
    if kind in ("enum", "const"):
        options = error.validator_value if kind == "enum" else [error.validator_value]
        names = [str(o) for o in options]
        lead = f": {message} {_describe(value)}" if message else f"must be one of {', '.join(names)}, not " \
               f"{_describe(value)}"
        suggestion = _suggest(value, names) if isinstance(value, str) else ""
        yield path, lead + (f" (known: {', '.join(names)})" if message else "") + \
            (suggestion if suggestion.startswith(";") else "")
        return
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": "at least", "exclusiveMinimum": "above", "maximum": "at most",
                "exclusiveMaximum": "below"}[kind]
        yield path, f"must be {word} {error.validator_value}, not {_describe(value)}"
        return
    if kind == "pattern" or kind == "anyOf":
        yield path, f"{message or 'is not valid'}, not {_describe(value)}" if not _secretish(path) else \
            (message or "is not valid")
        return
    if kind == "minItems":
        yield path, f"must list at least {error.validator_value}"
        return
    yield path, error.message


def _secretish(path: Path_) -> bool:
    """An ``*_env`` value that is not a variable name may be the secret itself: never echo it."""
    return bool(path) and isinstance(path[-1], str) and path[-1].endswith("_env")


def schema_problems(doc: Document) -> list[Problem]:
    root = load_schema()
    validator = jsonschema.Draft202012Validator(root)
    seen: set[tuple[Path_, str]] = set()
    problems = list(doc.duplicates)
    for error in validator.iter_errors(doc.data if doc.data is not None else {}):
        for path, message in _sentences(error, root):
            if (path, message) not in seen:
                seen.add((path, message))
                problems.append(doc.problem(path, message))
    return problems


def check(doc: Document, environ: Mapping[str, str]) -> list[Problem]:
    """Schema problems and unset variables, in file order; a variable under an unknown key is not reported
    (the key is)."""
    problems = schema_problems(doc)
    unknown = [p.path for p in problems if p.message.startswith(": unknown key")]
    problems += [p for p in env_problems(doc, environ) if not any(p.path[:len(u)] == u for u in unknown)]
    return sorted(problems, key=lambda p: (p.line, p.column))


def env_problems(doc: Document, environ: Mapping[str, str]) -> list[Problem]:
    """Every ``*_env`` key whose variable is not set (``secret_env`` may be unset), in file order."""
    problems = []
    for path, value in _walk(doc.data, ()):
        key = path[-1] if path else None
        if isinstance(key, str) and key.endswith("_env") and key not in OPTIONAL_ENV and isinstance(value, str) \
                and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) and not environ.get(value):
            problems.append(doc.problem(path, f": environment variable {value} (from {dotted(path)}) is not set"))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _walk(value: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), item
            yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, path + (i,))


_RULE = re.compile(r"policy rule '([^']*)'")


def locate(doc: Document, message: str) -> tuple[int, int]:
    """The line of the key a section parser's message names (``connectors.github.org``, ``identity.jwt.jwks_url``,
    ``policy rule 'qa'``): the longest known key path that appears in the message."""
    rule = _RULE.search(message)
    if rule and isinstance(doc.data, dict):
        rules = ((doc.data.get("policy") or {}).get("rules") or []) if isinstance(doc.data.get("policy"), dict) \
            else []
        for i, entry in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(entry, dict) and entry.get("name") == rule[1]:
                return doc.where(("policy", "rules", i))
    best: Path_ | None = None
    for path in doc.positions:
        name = dotted(path)
        if not path or (len(path) == 1 and not message.startswith(name)):
            continue  # a top-level word ("tenant", "policy") names its key only at the start of a message
        named = re.search(r"(?<![\w.\[])" + re.escape(name) + r"(?!\w)", message)
        if named and (best is None or len(path) > len(best)):
            best = path
    return doc.positions[best] if best is not None else (0, 0)
