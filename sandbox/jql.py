"""A real parser and evaluator for the JQL subset the Jira stand-in supports.

Grammar: ``clause ((AND|OR) clause)*``, ``NOT``, parentheses, ``ORDER BY f [ASC|DESC], ...``; operators
``= != < > <= >= ~ !~ IN, NOT IN, IS, IS NOT``; values are quoted strings (``"..."`` or ``'...'`` with backslash
escapes), bare words, numbers, ``EMPTY``/``NULL``, lists ``(a, "b")`` and the functions ``now()``/``currentUser()``.
Errors read like Jira's ("Error in the JQL Query: ... (line 1, character N)").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Row = dict[str, Any]
Matcher = Callable[[Row], bool]

OPERATORS_TEXT = ("The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and "
                  "'IS NOT'.")


class JqlError(ValueError):
    """A JQL query Jira would reject with 400; ``str()`` is the message Jira puts in errorMessages."""


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | op | punct | eof
    text: str
    pos: int


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>!=|<=|>=|!~|=|<|>|~)
  | (?P<punct>[(),])
  | (?P<word>[^\s"'(),=<>!~]+(?:\[[0-9]+\])?)
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(jql):
        m = _TOKEN_RE.match(jql, pos)
        if not m:
            snippet = jql[pos:pos + 10]
            if snippet.startswith(('"', "'")):
                raise JqlError(f"Error in the JQL Query: The quoted string has not been completed. (line 1, "
                               f"character {pos + 1})")
            raise JqlError(f"Error in the JQL Query: The character '{jql[pos]}' is a reserved JQL character. "
                           f"You must enclose it in a string or use the escape '\\u{ord(jql[pos]):04x}' instead. "
                           f"(line 1, character {pos + 1})")
        kind = m.lastgroup or "ws"
        if kind != "ws":
            text = m.group(kind)
            tokens.append(Token(kind, _unquote(text) if kind == "string" else text, pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(jql)))
    return tokens


@dataclass(frozen=True)
class Field:
    """How one JQL field reads an issue row, and which operators Jira allows on it."""

    row_key: str
    kind: str  # text | exact | exact_ci | number | date | list | user
    ops: frozenset[str]


_EQ_OPS = frozenset({"=", "!=", "IN", "NOT IN", "IS", "IS NOT"})
_ORD_OPS = _EQ_OPS | {"<", ">", "<=", ">="}
_TEXT_OPS = frozenset({"~", "!~", "IS", "IS NOT"})


def default_fields(story_points_id: str, branch_id: str, customer_id: str = "customfield_10200"
                   ) -> dict[str, Field]:
    """JQL names (lower-case) → fields, including custom fields by name and as ``cf[NNNNN]``."""
    sp = Field("story_points", "number", _ORD_OPS)
    branch = Field("branch", "text", _TEXT_OPS)
    fields = {
        "project": Field("project", "exact_ci", _EQ_OPS),
        "status": Field("status", "exact_ci", _EQ_OPS),
        "key": Field("key", "exact_ci", _EQ_OPS),
        "issuekey": Field("key", "exact_ci", _EQ_OPS),
        "assignee": Field("assignee_account", "user", _EQ_OPS),
        "labels": Field("labels", "list", _EQ_OPS),
        "summary": Field("summary", "text", _TEXT_OPS),
        "text": Field("summary", "text", _TEXT_OPS),
        "created": Field("created", "date", _ORD_OPS),
        "updated": Field("updated", "date", _ORD_OPS),
        "story points": sp,
        f"cf[{story_points_id.removeprefix('customfield_')}]": sp,
        "branch": branch,
        f"cf[{branch_id.removeprefix('customfield_')}]": branch,
        "customer": Field("customer", "exact_ci", _EQ_OPS),  # a single-select option
        f"cf[{customer_id.removeprefix('customfield_')}]": Field("customer", "exact_ci", _EQ_OPS),
    }
    return fields


class _Parser:
    def __init__(self, jql: str, fields: dict[str, Field], now: datetime) -> None:
        self.tokens = tokenize(jql)
        self.i = 0
        self.fields = fields
        self.now = now

    # -- token helpers -------------------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.upper() in words

    def error(self, expected: str, tok: Token) -> JqlError:
        got = "end of query" if tok.kind == "eof" else f"'{tok.text}'"
        return JqlError(f"Error in the JQL Query: Expecting {expected} but got {got}. (line 1, character "
                        f"{tok.pos + 1})")

    # -- grammar ---------------------------------------------------------------------------------------------
    def parse(self) -> tuple[Matcher | None, list[tuple[str, bool]]]:
        matcher = None
        if not self.at_word("ORDER") and self.peek().kind != "eof":
            matcher = self.or_expr()
        order = self.order_by()
        if self.peek().kind != "eof":
            raise self.error("either 'OR' or 'AND'", self.peek())
        return matcher, order

    def or_expr(self) -> Matcher:
        parts = [self.and_expr()]
        while self.at_word("OR"):
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def and_expr(self) -> Matcher:
        parts = [self.not_expr()]
        while self.at_word("AND"):
            self.next()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def not_expr(self) -> Matcher:
        if self.at_word("NOT"):
            self.next()
            inner = self.not_expr()
            return lambda row: not inner(row)
        if self.peek().text == "(" and self.peek().kind == "punct":
            self.next()
            inner = self.or_expr()
            if self.next().text != ")":
                raise self.error("')'", self.tokens[self.i - 1])
            return inner
        return self.clause()

    def clause(self) -> Matcher:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise self.error("a field name", tok)
        name = tok.text.lower()
        field = self.fields.get(name)
        if field is None:
            raise JqlError(f"Field '{tok.text}' does not exist or you do not have permission to view it.")
        op = self.operator()
        if op in ("IN", "NOT IN") and self.peek().text != "(":
            self.value_list(tok.text, op)  # raises Jira's non-list error before the operator check
        if op not in field.ops:
            raise JqlError(f"The operator '{op.lower() if op.isalpha() else op}' is not supported by the "
                           f"'{tok.text}' field.")
        if op in ("IN", "NOT IN"):
            values = self.value_list(tok.text, op)
            return _in_matcher(field, values, negate=op == "NOT IN")
        value = self.value()
        if op in ("IS", "IS NOT"):
            if value is not _EMPTY:
                raise JqlError(f"The operator '{op.lower()}' only supports EMPTY or NULL as its value.")
            return _empty_matcher(field, negate=op == "IS NOT")
        return _compare_matcher(field, op, value, self.now)

    def operator(self) -> str:
        tok = self.next()
        if tok.kind == "op":
            return tok.text
        word = tok.text.upper() if tok.kind == "word" else ""
        if word == "IN":
            return "IN"
        if word in ("NOT", "IS"):
            if self.at_word("IN") and word == "NOT":
                self.next()
                return "NOT IN"
            if word == "IS" and self.at_word("NOT"):
                self.next()
                return "IS NOT"
            if word == "IS":
                return "IS"
        raise JqlError(f"Error in the JQL Query: Expecting operator but got '{tok.text}'. {OPERATORS_TEXT} "
                       f"(line 1, character {tok.pos + 1})")

    def value(self) -> Any:
        tok = self.next()
        if tok.kind == "string":
            return tok.text
        if tok.kind != "word":
            raise self.error("either a value, list or function", tok)
        upper = tok.text.upper()
        if upper in ("EMPTY", "NULL"):
            return _EMPTY
        if self.peek().text == "(" and self.peek().kind == "punct":  # function call
            self.next()
            if self.next().text != ")":
                raise self.error("')'", self.tokens[self.i - 1])
            if upper == "NOW":
                return self.now
            if upper == "CURRENTUSER":
                return _CURRENT_USER
            raise JqlError(f"Unable to find JQL function '{tok.text}()'.")
        return tok.text

    def value_list(self, field_name: str, op: str) -> list[Any]:
        if self.peek().text != "(":
            raise JqlError(f"Operator '{op.lower()}' does not support the non-list value '\"{self.peek().text}\"' "
                           f"for field '{field_name}'.")
        self.next()
        values = [self.value()]
        while self.peek().text == ",":
            self.next()
            values.append(self.value())
        if self.next().text != ")":
            raise self.error("')'", self.tokens[self.i - 1])
        return values

    def order_by(self) -> list[tuple[str, bool]]:
        if not self.at_word("ORDER"):
            return []
        self.next()
        if not self.at_word("BY"):
            raise self.error("'by'", self.peek())
        self.next()
        order: list[tuple[str, bool]] = []
        while True:
            tok = self.next()
            field = self.fields.get(tok.text.lower())
            if field is None:
                raise JqlError(f"Field '{tok.text}' does not exist or you do not have permission to view it.")
            descending = False
            if self.at_word("ASC", "DESC"):
                descending = self.next().text.upper() == "DESC"
            order.append((field.row_key, descending))
            if self.peek().text != ",":
                break
            self.next()
        if len(order) > 7:
            raise JqlError("Error in the JQL Query: ORDER BY takes at most 7 fields.")
        return order


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name


_EMPTY = _Marker("EMPTY")
_CURRENT_USER = _Marker("currentUser()")

_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
_RELATIVE = re.compile(r"^([+-]?)(\d+)([wdhm])$")


def _as_date(value: Any, now: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    rel = _RELATIVE.match(text)
    if rel:
        amount = int(rel.group(2)) * (-1 if rel.group(1) == "-" else 1)
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[rel.group(3)]
        return now + timedelta(**{unit: amount})
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise JqlError(f"Date value '{text}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                   "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")


def _coerce(field: Field, value: Any, now: datetime) -> Any:
    if field.kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise JqlError(f"The value '{value}' is not a valid number.") from None
    if field.kind == "date":
        return _as_date(value, now)
    if isinstance(value, _Marker):
        return value
    return str(value)


def _norm(field: Field, v: Any) -> Any:
    return v.lower() if field.kind in ("exact_ci", "list") and isinstance(v, str) else v


def _in_matcher(field: Field, values: list[Any], negate: bool) -> Matcher:
    if field.kind == "number":  # Jira compares numbers as numbers: 13 = 13.0; "abc" is a 400
        values = [v if isinstance(v, _Marker) else _coerce(field, v, datetime.now(UTC)) for v in values]
    wanted = {_norm(field, v) for v in values if not isinstance(v, _Marker)}
    match_empty = any(v is _EMPTY for v in values)

    def matcher(row: Row) -> bool:
        actual = row[field.row_key]
        if field.kind == "list":
            items = {x.lower() for x in actual}
            hit = bool(items & wanted) or (match_empty and not items)
            return (not hit and bool(items)) if negate else hit
        if actual is None:
            return match_empty and not negate
        hit = _norm(field, actual) in wanted
        return not hit if negate else hit

    return matcher


def _empty_matcher(field: Field, negate: bool) -> Matcher:
    def matcher(row: Row) -> bool:
        actual = row[field.row_key]
        empty = actual is None or actual == [] or actual == ()
        return not empty if negate else empty

    return matcher


def lucene_text(raw: str) -> str:
    """The text a ``~`` value searches for: Jira reads it as Lucene, where a backslash makes the next character
    literal (``feature\\/login`` is ``feature/login``)."""
    return re.sub(r"\\(.)", r"\1", raw)


def _compare_matcher(field: Field, op: str, raw: Any, now: datetime) -> Matcher:
    if raw is _EMPTY:
        return _empty_matcher(field, negate=op == "!=")
    if op in ("=", "!="):
        inner = _in_matcher(field, [raw], negate=op == "!=")
        return inner
    if op in ("~", "!~"):
        needle = lucene_text(str(raw)).lower()
        return lambda row: (row[field.row_key] is not None
                            and (needle in row[field.row_key].lower()) == (op == "~"))
    value = _coerce(field, raw, now)
    compare = {"<": lambda a: a < value, "<=": lambda a: a <= value, ">": lambda a: a > value,
               ">=": lambda a: a >= value}[op]
    return lambda row: row[field.row_key] is not None and compare(row[field.row_key])


def compile_jql(jql: str, fields: dict[str, Field], now: datetime | None = None
                ) -> tuple[Matcher, list[tuple[str, bool]]]:
    """Parse ``jql``; returns (row matcher, order). Raises ``JqlError`` for what Jira would answer 400."""
    parser = _Parser(jql, fields, now or datetime.now(UTC))
    matcher, order = parser.parse()
    if matcher is None:
        raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your "
                       "query.")
    return matcher, order
