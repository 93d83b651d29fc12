"""A real parser and evaluator for the SOQL subset the Salesforce stand-in supports.

``SELECT f, Rel.f | COUNT() FROM Object [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]
[OFFSET n]``; conditions ``= != <> < <= > >= LIKE IN NOT IN`` with ``AND``/``OR``/``NOT`` and parentheses.
Semantics as Salesforce documents them: string comparison and LIKE are case-insensitive, ``!=`` keeps nulls,
``= null`` tests for null; dates are unquoted ``YYYY-MM-DD`` and only for date fields, dateTimes
``YYYY-MM-DDThh:mm:ssZ`` only for dateTime fields; backslash escapes are the documented ones (``\\%`` and ``\\_``
only inside LIKE), any other backslash is a MALFORMED_QUERY.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

Row = dict[str, Any]
Matcher = Callable[[Row], bool]
_STRINGY = frozenset({"id", "reference", "string", "picklist", "textarea", "email", "phone", "url"})
_NUMERIC = frozenset({"int", "double", "currency", "percent"})


class SoqlError(ValueError):
    """A query Salesforce would reject with 400; ``code`` is the errorCode (MALFORMED_QUERY, INVALID_FIELD)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Tok:
    kind: str  # word | string | number | datetime | date | op | punct | eof
    text: str
    value: Any = None


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?(?::\d+)?)
""", re.VERBOSE)
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _unescape(body: str) -> tuple[str, str, bool]:
    """The literal's text, its meaning as a LIKE pattern (a regex), and whether it used ``\\%``/``\\_`` (allowed
    only in LIKE)."""
    plain, regex, like_escape, i = [], [], False, 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            plain.append(ch)
            regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES and nxt:
            value, i = _ESCAPES[nxt], i + 2
        elif nxt in ("%", "_"):
            value, i, like_escape = nxt, i + 2, True
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            value, i = chr(int(body[i + 2:i + 6], 16)), i + 6
        else:
            raise SoqlError("MALFORMED_QUERY", f"Invalid string literal '{body}'. Illegal character sequence "
                                               f"'\\{nxt}' in string literal.")
        plain.append(value)
        regex.append(re.escape(value))
    return "".join(plain), "".join(regex), like_escape


def tokenize(soql: str) -> list[Tok]:
    tokens, pos = [], 0
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{soql[pos:pos + 12]}'")
        kind = m.lastgroup or "ws"
        text = m.group(kind)
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Tok(kind, text, _unescape(text[1:-1])))
        elif kind == "datetime":
            tokens.append(Tok(kind, text, datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)))
        elif kind == "date":
            tokens.append(Tok(kind, text, date.fromisoformat(text)))
        elif kind == "number":
            tokens.append(Tok(kind, text, float(text)))
        else:
            tokens.append(Tok(kind, text))
    tokens.append(Tok("eof", ""))
    return tokens


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[str, ...]  # canonical names, dotted for parents; empty for COUNT()
    count: bool
    where: Matcher | None
    order: tuple[tuple[str, bool, bool], ...]  # (field, descending, nulls_last)
    limit: int | None
    offset: int


def _date_literal(word: str, kind: str, now: datetime) -> tuple[Any, Any] | None:
    """A few date literals as a [start, end) range in the field's kind."""
    today = now.date()
    name, _, n = word.upper().partition(":")
    ranges = {"TODAY": (today, today + timedelta(days=1)), "YESTERDAY": (today - timedelta(days=1), today),
              "TOMORROW": (today + timedelta(days=1), today + timedelta(days=2))}
    q = (today.month - 1) // 3 * 3 + 1
    start_q = date(today.year, q, 1)
    ranges["THIS_QUARTER"] = (start_q, date(today.year + (q == 10), (q + 2) % 12 + 1, 1))
    ranges["THIS_YEAR"] = (date(today.year, 1, 1), date(today.year + 1, 1, 1))
    if name == "LAST_N_DAYS" and n.isdigit():
        ranges[name] = (today - timedelta(days=int(n)), today + timedelta(days=1))
    if name == "NEXT_N_DAYS" and n.isdigit():
        ranges[name] = (today, today + timedelta(days=int(n) + 1))
    if name not in ranges:
        return None
    lo, hi = ranges[name]
    if kind == "datetime":
        return (datetime(lo.year, lo.month, lo.day, tzinfo=UTC), datetime(hi.year, hi.month, hi.day, tzinfo=UTC))
    return lo, hi


class _Parser:
    def __init__(self, soql: str, schemas: dict[str, dict[str, str]], now: datetime) -> None:
        self.toks = tokenize(soql)
        self.i = 0
        self.schemas = schemas
        self.now = now
        self.sobject = ""

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        self.i += 1
        return self.toks[self.i - 1]

    def at(self, *words: str) -> bool:
        return self.peek().kind == "word" and self.peek().text.upper() in words

    def expect(self, word: str) -> None:
        tok = self.next()
        if tok.text.upper() != word:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text or '<EOF>'}'")

    def parse(self) -> Query:
        self.expect("SELECT")
        names, count = self.select_list()
        self.expect("FROM")
        obj = self.next()
        match = {k.lower(): k for k in self.schemas}.get(obj.text.lower())
        if obj.kind != "word" or match is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{obj.text}' is not supported.")
        self.sobject = match
        fields = tuple(self.field(n) for n in names)
        where = None
        if self.at("WHERE"):
            self.next()
            where = self.or_expr()
        order: list[tuple[str, bool, bool]] = []
        if self.at("ORDER"):
            self.next()
            self.expect("BY")
            while True:
                name = self.field(self.next().text)
                desc = self.at("DESC")
                if self.at("ASC", "DESC"):
                    self.next()
                nulls_last = desc
                if self.at("NULLS"):
                    self.next()
                    nulls_last = self.next().text.upper() == "LAST"
                order.append((name, desc, nulls_last))
                if self.peek().text != ",":
                    break
                self.next()
        limit = self.integer("LIMIT") if self.at("LIMIT") else None
        offset = self.integer("OFFSET") if self.at("OFFSET") else 0
        if self.peek().kind != "eof":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek().text}'")
        return Query(self.sobject, fields, count, where, tuple(order), limit, offset)

    def integer(self, word: str) -> int:
        self.next()
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text}'")
        return int(tok.text)

    def select_list(self) -> tuple[list[str], bool]:
        if self.at("COUNT"):
            self.next()
            if self.next().text != "(" or self.next().text != ")":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: 'COUNT'")
            return [], True
        names = []
        while True:
            tok = self.next()
            if tok.kind != "word":
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text}'")
            names.append(tok.text)
            if self.peek().text != ",":
                return names, False
            self.next()

    def field(self, name: str) -> str:
        """The canonical (case-corrected) field name; ``Account.Name`` through the relationship."""
        obj, rel, leaf = self.sobject, "", name
        if "." in name:
            rel, leaf = name.split(".", 1)
            if rel.lower() != "account" or self.sobject == "Account":
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in field path.")
            obj, rel = "Account", "Account."
        canonical = {k.lower(): k for k in self.schemas[obj]}.get(leaf.lower())
        if canonical is None:
            raise SoqlError("INVALID_FIELD", f"No such column '{leaf}' on entity '{obj}'. If you are attempting to "
                                             "use a custom field, be sure to append the '__c' after the custom "
                                             "field name.")
        return rel + canonical

    def kind(self, name: str) -> str:
        if name.startswith("Account."):
            return self.schemas["Account"][name[8:]]
        return self.schemas[self.sobject][name]

    # -- conditions ----------------------------------------------------------------------------------------
    def or_expr(self) -> Matcher:
        parts = [self.and_expr()]
        while self.at("OR"):
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def and_expr(self) -> Matcher:
        parts = [self.not_expr()]
        while self.at("AND"):
            self.next()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def not_expr(self) -> Matcher:
        if self.at("NOT"):
            self.next()
            inner = self.not_expr()
            return lambda row: not inner(row)
        if self.peek().text == "(":
            self.next()
            inner = self.or_expr()
            if self.next().text != ")":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: missing ')'")
            return inner
        return self.condition()

    def condition(self) -> Matcher:
        tok = self.next()
        if tok.kind != "word":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text}'")
        name = self.field(tok.text)
        kind = self.kind(name)
        if kind == "address":
            raise SoqlError("INVALID_FIELD", f"field '{tok.text}' can not be filtered in a query call")
        negate = False
        if self.at("NOT"):
            self.next()
            negate = True
            if not self.at("IN"):
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek().text}'")
        op_tok = self.next()
        op = op_tok.text.upper()
        if op == "IN":
            if self.next().text != "(":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: IN needs a list")
            values = [self.value(name, kind)]
            while self.peek().text == ",":
                self.next()
                values.append(self.value(name, kind))
            if self.next().text != ")":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: missing ')'")
            return _in(name, kind, values, negate)
        if op == "LIKE":
            if kind not in _STRINGY:
                raise SoqlError("INVALID_FIELD", f"invalid operator on {kind} field: LIKE")
            pat = self.next()
            if pat.kind != "string":
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{pat.text}'")
            regex = re.compile(pat.value[1], re.IGNORECASE | re.DOTALL)
            return lambda row: row.get(name) is not None and regex.fullmatch(str(row[name])) is not None
        if op_tok.kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op_tok.text}'")
        value = self.value(name, kind, allow_range=True)
        return _compare(name, kind, "!=" if op == "<>" else op, value)

    def value(self, name: str, kind: str, allow_range: bool = False) -> Any:
        tok = self.next()
        if tok.kind == "word" and tok.text.lower() == "null":
            return None
        if kind in _STRINGY:
            if tok.kind != "string":
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                                 "string and should be enclosed in quotes")
            text, _, like_escape = tok.value
            if like_escape:
                raise SoqlError("MALFORMED_QUERY", "Invalid string literal: '\\%' and '\\_' are only allowed "
                                                   "in LIKE")
            return text
        if kind == "boolean":
            if tok.kind != "word" or tok.text.lower() not in ("true", "false"):
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                                 "boolean and should not be enclosed in quotes")
            return tok.text.lower() == "true"
        if kind in _NUMERIC:
            if tok.kind != "number":
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                                 f"{'double' if kind != 'int' else 'int'} and should not be "
                                                 "enclosed in quotes")
            return tok.value
        if kind in ("date", "datetime"):
            if tok.kind == "word" and allow_range:
                rng = _date_literal(tok.text, kind, self.now)
                if rng is not None:
                    return _Range(*rng)
            if tok.kind != kind:
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                                 f"{'dateTime' if kind == 'datetime' else 'date'} and should not "
                                                 "be enclosed in quotes")
            return tok.value
        raise SoqlError("INVALID_FIELD", f"field '{name}' can not be filtered in a query call")


@dataclass(frozen=True)
class _Range:
    start: Any
    end: Any


def _norm(kind: str, value: Any) -> Any:
    return value.lower() if kind in _STRINGY and isinstance(value, str) else value


def _in(name: str, kind: str, values: list[Any], negate: bool) -> Matcher:
    wanted = {_norm(kind, v) for v in values}

    def match(row: Row) -> bool:
        value = _norm(kind, row.get(name))
        return (value not in wanted) if negate else (value in wanted)

    return match


def _compare(name: str, kind: str, op: str, value: Any) -> Matcher:
    if isinstance(value, _Range):
        rng = value
        tests: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: rng.start <= v < rng.end, "!=": lambda v: not rng.start <= v < rng.end,
            "<": lambda v: v < rng.start, "<=": lambda v: v < rng.end, ">": lambda v: v >= rng.end,
            ">=": lambda v: v >= rng.start}
        return lambda row: row.get(name) is not None and tests[op](row[name])
    if value is None:
        if op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"invalid operator on null: {op}")
        return (lambda row: row.get(name) is None) if op == "=" else (lambda row: row.get(name) is not None)
    target = _norm(kind, value)
    if op == "!=":  # Salesforce keeps rows whose field is null
        return lambda row: _norm(kind, row.get(name)) != target
    checks: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b}
    check = checks[op]
    return lambda row: row.get(name) is not None and check(_norm(kind, row[name]), target)


def parse_soql(soql: str, schemas: dict[str, dict[str, str]], now: datetime | None = None) -> Query:
    """``schemas``: object → {canonical field name → type}."""
    return _Parser(soql, schemas, now or datetime.now(UTC)).parse()


def sort_rows(rows: list[Row], order: tuple[tuple[str, bool, bool], ...]) -> list[Row]:
    """ORDER BY as Salesforce does it: text case-insensitively, nulls first ascending unless told otherwise."""
    out = list(rows)
    for name, desc, nulls_last in reversed(order):
        present = [r for r in out if r.get(name) is not None]
        missing = [r for r in out if r.get(name) is None]
        present.sort(key=lambda r: _norm("string", r[name]) if isinstance(r[name], str) else r[name], reverse=desc)
        out = present + missing if nulls_last else missing + present
    return out
