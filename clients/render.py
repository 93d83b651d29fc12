"""Rendering for the CLI: an aligned table for results, one block per step for EXPLAIN (bounded rows), JSON
values and CSV rows."""

from __future__ import annotations

import base64
import csv
import datetime
import json
import math
import re
import unicodedata
from typing import TextIO

import pyarrow as pa

__all__ = ["csv_cell", "json_rows", "plain", "render_table", "render_vertical", "unique_names", "width",
           "write_csv_header", "write_csv_rows"]

MAX_CELL = 60


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and full-width characters (CJK, most emoji) take two,
    combining marks and zero-width characters none."""
    return sum(0 if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def _cell(value: object) -> str:
    """A value as one table cell: NULL for null, control characters escaped (a newline or tab in a value cannot
    break the row), and at most ``MAX_CELL`` columns wide (cut with ``…``; json and csv keep whole values)."""
    text = "NULL" if value is None else _CONTROL.sub(_escape, _text(value))
    if width(text) <= MAX_CELL:
        return text
    kept, used = [], 0
    for ch in text:
        used += width(ch)
        if used > MAX_CELL - 1:
            break
        kept.append(ch)
    return "".join(kept) + "…"


def _text(value: object) -> str:
    """A value as SQL shows it, not as Python does: true/false, lists and structs as JSON (as csv writes them),
    bytes as hex."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(plain(value), ensure_ascii=False, separators=(", ", ": "))
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{ord(ch):02x}")


def _encodable(text: str, encoding: str) -> str:
    return text.encode(encoding, "replace").decode(encoding, "replace")


def _rows(table: pa.Table) -> list[list[object]]:
    """Rows as lists, by column position: a result may name two columns alike (``gh.status, ji.status``)."""
    columns = [column.to_pylist() for column in table.columns]
    return [list(values) for values in zip(*columns, strict=True)] if columns else []


def unique_names(names: list[str]) -> list[str]:
    """``status, status`` → ``status, status_2``: keys for formats that need distinct names."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def json_rows(table: pa.Table) -> list[dict[str, object]]:
    names = unique_names(table.schema.names)
    return [dict(zip(names, (plain(v) for v in row), strict=True)) for row in _rows(table)]


def render_table(table: pa.Table, max_rows: int, encoding: str | None = None) -> str:
    """Aligned text; with ``encoding`` (stdout's, when it is not UTF-8) a character it lacks is ``?`` already
    here, so the columns stay aligned as printed."""
    rows = [[_cell(v) for v in row] for row in _rows(table.slice(0, max_rows))]
    names = [_CONTROL.sub(_escape, name) for name in table.schema.names]
    if encoding is not None:
        rows = [[_encodable(c, encoding) for c in row] for row in rows]
        names = [_encodable(n, encoding) for n in names]
    widths = [max([width(n)] + [width(r[i]) for r in rows]) for i, n in enumerate(names)]
    # Cells are padded to their column's display width; a line's trailing blanks are dropped.
    lines = [" | ".join(_pad(n, w) for n, w in zip(names, widths, strict=True)).rstrip(),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    more = table.num_rows - len(rows)
    lines.append(f"({table.num_rows} row{'s' if table.num_rows != 1 else ''}"
                 + (f", {more} not shown; raise --max-rows)" if more > 0 else ")"))
    return "\n".join(lines)


def render_vertical(table: pa.Table, max_rows: int) -> str:
    """One block per row, skipping empty fields: EXPLAIN rows are wide and mostly sparse."""
    blocks = []
    names = table.schema.names
    width = max((len(n) for n in names), default=0)
    for row in _rows(table.slice(0, max_rows)):
        blocks.append("\n".join(f"{k.rjust(width)}: {v}" for k, v in zip(names, row, strict=True) if v is not None))
    return "\n\n".join(blocks)


def plain(value: object) -> object:
    """A Python value as JSON can hold it: ISO dates and times, decimals as text (no precision lost), bytes as
    base64, NaN and infinities as null; lists and structs recursively."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Decimal, timedelta, ...


def csv_cell(value: object) -> str:
    """One CSV field: empty for NULL, true/false, ISO dates, lists and structs as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(plain(value), separators=(",", ":"))
    converted = plain(value)
    return "" if converted is None else str(converted)


def write_csv_header(out: TextIO, names: list[str]) -> None:
    csv.writer(out, lineterminator="\n").writerow(names)


def write_csv_rows(out: TextIO, batch: pa.RecordBatch) -> None:
    writer = csv.writer(out, lineterminator="\n")
    columns = [column.to_pylist() for column in batch.columns]
    for row in zip(*columns, strict=True):
        writer.writerow([csv_cell(v) for v in row])
