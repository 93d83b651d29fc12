"""Linear's filter objects evaluated on the stand-in's records: ``IssueFilter``, ``TeamFilter``, ``UserFilter``
and the comparators they nest (string, number, date with ISO 8601 durations relative to now, ``null``), combined
with ``and``/``or``. A comparison with a null value is false (only ``null: true`` matches it), as in SQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["FilterError", "matches"]


class FilterError(ValueError):
    """A filter value the API would refuse (an unreadable date)."""


_DURATION = re.compile(r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def _moment(value: Any) -> datetime:
    """DateTimeOrDuration: an ISO 8601 time, a year such as ``2021``, or a duration relative to now (``-P2W1D``)."""
    text = str(value)
    found = _DURATION.match(text)
    if found and text not in ("P", "-P"):
        sign, years, months, weeks, days, hours, minutes, seconds = found.groups()
        delta = timedelta(days=int(years or 0) * 365 + int(months or 0) * 30 + int(weeks or 0) * 7 + int(days or 0),
                          hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(seconds or 0))
        return datetime.now(UTC) + (-delta if sign else delta)
    if re.fullmatch(r"\d{4}", text):
        return datetime(int(text), 1, 1, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"Invalid date value: {text[:40]}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(value: Any) -> date:
    return _moment(value).date()


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "neq": lambda a, b: a != b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "in": lambda a, b: a in b, "nin": lambda a, b: a not in b,
    "eqIgnoreCase": lambda a, b: a.lower() == b.lower(), "neqIgnoreCase": lambda a, b: a.lower() != b.lower(),
    "contains": lambda a, b: b in a, "containsIgnoreCase": lambda a, b: b.lower() in a.lower(),
    "notContains": lambda a, b: b not in a, "notContainsIgnoreCase": lambda a, b: b.lower() not in a.lower(),
    "startsWith": lambda a, b: a.startswith(b), "startsWithIgnoreCase": lambda a, b: a.lower().startswith(b.lower()),
    "notStartsWith": lambda a, b: not a.startswith(b), "endsWith": lambda a, b: a.endswith(b),
    "notEndsWith": lambda a, b: not a.endswith(b),
}


def compare(value: Any, comparator: Mapping[str, Any], kind: str = "plain") -> bool:
    """One comparator object against one value; ``kind`` says how to read its operands (date, day, plain)."""
    for op, operand in comparator.items():
        if operand is None:
            continue
        if op == "null":
            if (value is None) != bool(operand):
                return False
            continue
        if op in ("and", "or"):
            results = [compare(value, c, kind) for c in operand]
            if not (all(results) if op == "and" else any(results)):
                return False
            continue
        if value is None:
            return False
        convert: Callable[[Any], Any] = {"date": _moment, "day": _day}.get(kind, lambda v: v)
        left = convert(value)
        right = [convert(o) for o in operand] if op in ("in", "nin") else convert(operand)
        if not _CMP[op](left, right):
            return False
    return True


# field → (how to read it from a record, comparator kind | nested filter spec)
Spec = Mapping[str, tuple[Callable[[Mapping[str, Any]], Any], Any]]

TEAM: Spec = {"id": (lambda r: r["id"], "plain"), "key": (lambda r: r["key"], "plain"),
              "name": (lambda r: r["name"], "plain"), "description": (lambda r: r.get("description"), "plain"),
              "createdAt": (lambda r: r["createdAt"], "date")}
STATE: Spec = {"id": (lambda r: r["id"], "plain"), "name": (lambda r: r["name"], "plain"),
               "type": (lambda r: r["type"], "plain")}
USER: Spec = {"id": (lambda r: r["id"], "plain"), "name": (lambda r: r["name"], "plain"),
              "displayName": (lambda r: r["displayName"], "plain"), "email": (lambda r: r["email"], "plain"),
              "active": (lambda r: r["active"], "plain"), "admin": (lambda r: r["admin"], "plain"),
              "isMe": (lambda r: False, "plain")}
LABEL: Spec = {"id": (lambda r: r["id"], "plain"), "name": (lambda r: r["name"], "plain")}
ISSUE: Spec = {
    "id": (lambda r: r["id"], "plain"), "number": (lambda r: r["number"], "plain"),
    "title": (lambda r: r["title"], "plain"), "description": (lambda r: r.get("description"), "plain"),
    "team": (lambda r: r["team"], TEAM), "state": (lambda r: r["state"], STATE),
    "assignee": (lambda r: r.get("assignee"), ("nullable", USER)),
    "creator": (lambda r: r.get("creator"), ("nullable", USER)),
    "labels": (lambda r: r["labels"], ("collection", LABEL)),
    "estimate": (lambda r: r.get("estimate"), "plain"), "priority": (lambda r: r["priority"], "plain"),
    "createdAt": (lambda r: r["createdAt"], "date"), "updatedAt": (lambda r: r["updatedAt"], "date"),
    "startedAt": (lambda r: r.get("startedAt"), "date"), "completedAt": (lambda r: r.get("completedAt"), "date"),
    "canceledAt": (lambda r: r.get("canceledAt"), "date"), "archivedAt": (lambda r: r.get("archivedAt"), "date"),
    "dueDate": (lambda r: r.get("dueDate"), "day"),
}


def matches(record: Mapping[str, Any] | None, filter_: Mapping[str, Any] | None, spec: Spec) -> bool:
    if not filter_:
        return True
    for key, condition in filter_.items():
        if condition is None:
            continue
        if key in ("and", "or"):
            results = [matches(record, f, spec) for f in condition]
            if not (all(results) if key == "and" else any(results)):
                return False
            continue
        if record is None:
            return False
        read, kind = spec[key]
        if not _field(read(record), condition, kind):
            return False
    return True


def _field(value: Any, condition: Mapping[str, Any], kind: Any) -> bool:
    if isinstance(kind, str):
        return compare(value, condition, kind)
    if isinstance(kind, tuple) and kind[0] == "nullable":
        if "null" in condition and condition["null"] is not None and (value is None) != bool(condition["null"]):
            return False
        rest = {k: v for k, v in condition.items() if k != "null"}
        return not rest or matches(value, rest, kind[1])
    if isinstance(kind, tuple) and kind[0] == "collection":
        items = list(value or [])
        for op, sub in condition.items():
            if sub is None:
                continue
            ok = {"some": lambda s: any(matches(i, s, kind[1]) for i in items),
                  "every": lambda s: all(matches(i, s, kind[1]) for i in items),
                  "length": lambda s: compare(len(items), s),
                  "null": lambda s: (not items) == bool(s),
                  "name": lambda s: any(compare(i["name"], s) for i in items),
                  "id": lambda s: any(compare(i["id"], s) for i in items),
                  "and": lambda s: all(_field(value, c, kind) for c in s),
                  "or": lambda s: any(_field(value, c, kind) for c in s)}[op](sub)
            if not ok:
                return False
        return True
    return matches(value, condition, kind)
