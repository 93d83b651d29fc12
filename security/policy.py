"""Access policy as data: which principal may read which table, which rows (a row filter) and which column
values (masks, denied columns). The planner places the decisions (row filters into the scan's conditions and a
mandatory re-check; masks on the fetched batches); connectors never see policy.

Rules are tried in order; for a (principal, table) pair the first rule that matches both decides. A table no
rule matches gets the tenant's ``default`` (``deny`` unless the policy says ``allow``). Principal variables in
row filters (``:user.team``, ``:user.name``, ``:user.tenant``) are bound as SQL literals into the parsed
expression — never spliced into SQL text.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from core.errors import EntitlementDenied
from core.types import TableSpec
from security.masks import MIN_KEY_BYTES, Mask, mask_supports
from security.principals import Principal

log = logging.getLogger("omnisql.policy")
__all__ = ["ALLOW_ALL", "Policy", "PolicyError", "Rule", "TableDecision", "bind_row_filter", "decision_fingerprint",
           "parse_mask", "parse_policy", "parse_row_filter", "unknown_filter_columns"]

_VARIABLE = re.compile(r":user\.([A-Za-z_][A-Za-z0-9_]*)")
_VAR_PREFIX = "__omnisql_user_"
MASK_KINDS = ("redact", "null", "hash", "email", "partial")


class PolicyError(ValueError):
    """The policy section of the tenant config is wrong; the message names the rule and key."""


@dataclass(frozen=True)
class Rule:
    """``users``/``roles`` are glob patterns (a principal matches if its name matches one of ``users`` and it
    holds one of ``roles``; an empty list matches anyone); ``attributes`` must all be equal; ``tables`` are
    globs over ``schema.table``. ``masks`` maps a column to a ``Mask``, or to None for a denied column."""

    name: str
    tables: tuple[str, ...] = ("*",)
    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    access: Literal["allow", "deny"] = "allow"
    row_filter: str | None = None
    masks: Mapping[str, Mask | None] = field(default_factory=dict)

    def matches(self, principal: Principal, table: str) -> bool:
        return (any(fnmatch.fnmatchcase(table, pattern) for pattern in self.tables)
                and (not self.users or any(fnmatch.fnmatchcase(principal.user, u) for u in self.users))
                and (not self.roles or bool(set(self.roles) & set(principal.roles)))
                and all(principal.attributes.get(k) == v for k, v in self.attributes.items()))


@dataclass(frozen=True)
class TableDecision:
    """What one principal may see of one table."""

    table: str
    allowed: bool
    rule: str  # the rule that decided, or "default"
    row_filter: exp.Expr | None = None  # over the table's columns (unqualified), variables bound as literals
    masks: Mapping[str, Mask] = field(default_factory=dict)
    denied_columns: frozenset[str] = frozenset()

    @property
    def restricts(self) -> bool:
        return self.row_filter is not None or bool(self.masks) or bool(self.denied_columns)

    def describe(self) -> list[str]:
        """Short strings for the audit log and EXPLAIN (names only, never values)."""
        out = [f"{self.table}: {'allow' if self.allowed else 'deny'} by {self.rule}"]
        if self.row_filter is not None:
            out.append(f"{self.table}: row filter")
        out += [f"{self.table}.{c}: mask {m.kind}" for c, m in sorted(self.masks.items())]
        out += [f"{self.table}.{c}: denied" for c in sorted(self.denied_columns)]
        return out

    def require(self) -> None:
        if not self.allowed:
            raise EntitlementDenied(f"you may not read {self.table}; ask an administrator for access")


@dataclass(frozen=True)
class Policy:
    """``static``: the decisions depend only on the principal and never change while the server runs, so the
    engine may remember a principal's scope for good (a decision point's answers may change: it sets False)."""

    rules: tuple[Rule, ...] = ()
    default: Literal["allow", "deny"] = "deny"
    mask_key: bytes = b""
    static: ClassVar[bool] = True

    def decide(self, principal: Principal, spec: TableSpec) -> TableDecision:
        table = spec.qualified_name
        rule = next((r for r in self.rules if r.matches(principal, table)), None)
        if rule is None:
            return TableDecision(table, self.default == "allow", "default")
        if rule.access == "deny":
            return TableDecision(table, False, rule.name)
        names = {c.name for c in spec.columns}
        row_filter = bind_row_filter(rule.row_filter, principal) if rule.row_filter else None
        masks = {c: m for c, m in rule.masks.items() if m is not None and c in names}
        denied = frozenset(c for c, m in rule.masks.items() if m is None and c in names)
        return TableDecision(table, True, rule.name, row_filter, masks, denied)

    def scope(self, principal: Principal, specs: Iterable[TableSpec]) -> str:
        """A fingerprint of everything this principal may see: principals with the same decisions share it
        (and so may share cached rows and learned statistics); any difference separates them."""
        decisions = [decision_fingerprint(self.decide(principal, s))
                     for s in sorted(specs, key=lambda s: s.qualified_name)]
        digest = hashlib.sha256(json.dumps([principal.tenant, decisions], default=str).encode()).hexdigest()
        return f"{principal.tenant}:{digest[:16]}"

    def close(self) -> None:
        """Release what the policy holds (a decision point's connections); rules hold nothing."""

    def validate(self, specs: Sequence[TableSpec]) -> None:
        """Every row filter and mask names columns of every table its rule can match, and every table pattern
        matches a table of the connectors it names (checked at start-up)."""
        for rule in self.rules:
            _check_patterns(rule, specs)
            matched = [s for s in specs if any(fnmatch.fnmatchcase(s.qualified_name, t) for t in rule.tables)]
            for spec in matched:
                names = {c.name for c in spec.columns}
                if rule.row_filter:
                    unknown = unknown_filter_columns(parse_row_filter(rule.row_filter, rule.name), spec)
                    if unknown:
                        raise PolicyError(f"policy rule {rule.name!r}: row_filter names {sorted(unknown)}, which "
                                          f"{spec.qualified_name} does not have (columns: {sorted(names)})")
                unknown_masks = set(rule.masks) - names
                if unknown_masks and len(matched) == 1:
                    raise PolicyError(f"policy rule {rule.name!r}: masks name {sorted(unknown_masks)}, which "
                                      f"{spec.qualified_name} does not have")
                for column, mask in rule.masks.items():
                    if mask is not None and column in names and not mask_supports(mask, spec.column(column).type):
                        raise PolicyError(f"policy rule {rule.name!r}: a {mask.kind} mask cannot apply to "
                                          f"{spec.qualified_name}.{column} ({spec.column(column).type}); use "
                                          "redact, null or deny")
            if len(matched) > 1:  # a rule over several tables may mask columns only some have, but not none
                nowhere = set(rule.masks) - {c.name for spec in matched for c in spec.columns}
                if nowhere:
                    raise PolicyError(f"policy rule {rule.name!r}: masks name {sorted(nowhere)}, which none of its "
                                      f"tables ({', '.join(s.qualified_name for s in matched)}) has")
            keyed = [c for c, m in rule.masks.items() if m is not None and m.kind in ("hash", "email")]
            if keyed and len(self.mask_key) < MIN_KEY_BYTES:
                raise PolicyError(f"policy rule {rule.name!r}: hash/email masks ({', '.join(sorted(keyed))}) need a "
                                  f"key of at least {MIN_KEY_BYTES} bytes in the variable policy.mask_key_env names")


def _check_patterns(rule: Rule, specs: Sequence[TableSpec]) -> None:
    """A pattern that names a configured connector but none of its tables is a typo (``github.pull_request``,
    ``GitHub.*``): its masks and filters would silently apply to nothing, so start-up fails with the close names.
    A pattern for a connector this deployment does not configure (one policy shared by several) is only logged."""
    names = [spec.qualified_name for spec in specs]
    schemas = {spec.schema_name for spec in specs}
    for pattern in rule.tables:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            continue
        schema = pattern.split(".", 1)[0]
        if not any(fnmatch.fnmatchcase(known, schema.lower()) for known in schemas):
            log.warning("policy rule %r: no configured connector has tables matching %r", rule.name, pattern)
            continue
        close = difflib.get_close_matches(pattern.lower(), names, n=3, cutoff=0.6)
        if any(fnmatch.fnmatchcase(name, pattern.lower()) for name in names):
            hint = f"; write it in lower case: {pattern.lower()!r}"
        elif close:
            hint = f"; did you mean {', '.join(close)}?"
        else:
            hint = f"; the tables are {', '.join(sorted(names))}"
        raise PolicyError(f"policy rule {rule.name!r}: table pattern {pattern!r} matches no table (names are "
                          f"schema.table in lower case){hint}")


ALLOW_ALL = Policy(default="allow")  # a tenant without a policy section (documented; warned at start-up)


def decision_fingerprint(decision: TableDecision) -> list[Any]:
    """Everything a decision lets through, as JSON-able data: equal fingerprints, equal access (scopes)."""
    row_filter = decision.row_filter.sql("duckdb") if decision.row_filter is not None else None
    return [decision.table, decision.allowed, row_filter,
            sorted((c, m.kind, m.keep) for c, m in decision.masks.items()), sorted(decision.denied_columns)]


def unknown_filter_columns(parsed: exp.Expr, spec: TableSpec) -> set[str]:
    """The columns a parsed row filter names that ``spec`` does not have (principal variables aside)."""
    return {c.name for c in parsed.find_all(exp.Column) if not c.name.startswith(_VAR_PREFIX)} \
        - {c.name for c in spec.columns}


def parse_row_filter(text: str, rule: str) -> exp.Expr:
    try:
        parsed = sqlglot.parse_one(_VARIABLE.sub(lambda m: _VAR_PREFIX + m.group(1), text), dialect="duckdb")
    except SqlglotError as exc:
        raise PolicyError(f"policy rule {rule!r}: row_filter is not a SQL condition ({exc})") from exc
    if parsed.find(exp.Select, exp.Subquery) or not isinstance(parsed, exp.Condition):
        raise PolicyError(f"policy rule {rule!r}: row_filter must be a condition over the table's columns, "
                          "without subqueries")
    return parsed


def bind_row_filter(text: str, principal: Principal) -> exp.Expr:
    """The row filter with each ``:user.x`` replaced by a literal of the principal's value (NULL when the
    principal has no such attribute: the filter then admits no row)."""
    values: dict[str, Any] = {**principal.attributes, "name": principal.user, "tenant": principal.tenant}

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith(_VAR_PREFIX):
            value = values.get(node.name[len(_VAR_PREFIX):])
            return exp.Null() if value is None else exp.Literal.string(str(value))
        return node

    return parse_row_filter(text, "?").transform(replace)


def parse_policy(raw: Mapping[str, Any], mask_key: bytes) -> Policy:
    """The ``policy:`` section of the tenant YAML (see README, Security)."""
    unknown_keys = set(raw) - {"default", "rules"}
    if unknown_keys:
        raise PolicyError(f"policy: unknown key(s) {sorted(unknown_keys)}; expected default, mask_key_env, rules "
                          "(or decision_point)")
    default = raw.get("default", "deny")
    if default not in ("allow", "deny"):
        raise PolicyError(f"policy.default must be allow or deny, not {default!r}")
    rules = []
    for i, entry in enumerate(raw.get("rules") or []):
        name = str(entry.get("name") or f"rules[{i}]")
        unknown = set(entry) - {"name", "match", "tables", "access", "row_filter", "masks"}
        if unknown:
            raise PolicyError(f"policy rule {name!r}: unknown key(s) {sorted(unknown)}")
        match = entry.get("match") or {}
        access = entry.get("access", "allow")
        if access not in ("allow", "deny"):
            raise PolicyError(f"policy rule {name!r}: access must be allow or deny, not {access!r}")
        row_filter = entry.get("row_filter")
        if row_filter is not None:
            parse_row_filter(str(row_filter), name)
        rules.append(Rule(name=name, tables=_strings(entry.get("tables", ["*"]), name, "tables"),
                          users=_strings(match.get("users", []), name, "match.users"),
                          roles=_strings(match.get("roles", []), name, "match.roles"),
                          attributes={str(k): str(v) for k, v in (match.get("attributes") or {}).items()},
                          access=access, row_filter=str(row_filter) if row_filter is not None else None,
                          masks={str(c): parse_mask(v, name, str(c)) for c, v in (entry.get("masks") or {}).items()}))
    return Policy(tuple(rules), default, mask_key)


def _strings(value: Any, rule: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"policy rule {rule!r}: {key} must be a list of strings")
    return tuple(value)


def parse_mask(value: Any, rule: str, column: str) -> Mask | None:
    """``redact | null | hash | email | deny | partial`` or ``{partial: N}`` / ``partial:N`` (None: deny)."""
    if value == "deny":
        return None
    if isinstance(value, dict) and set(value) == {"partial"} and isinstance(value["partial"], int) \
            and not isinstance(value["partial"], bool) and value["partial"] >= 0:
        return Mask("partial", value["partial"])
    if isinstance(value, str) and value.startswith("partial:") and value[8:].isdigit():
        return Mask("partial", int(value[8:]))
    if value in MASK_KINDS and value != "partial":
        return Mask(value)
    raise PolicyError(f"policy rule {rule!r}: mask for {column} must be one of {', '.join(MASK_KINDS)}, deny or "
                      f"{{partial: N}} (N a whole number >= 0), not {value!r}")
