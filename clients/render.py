"""Text rendering for the CLI: an aligned table for results, one block per step for EXPLAIN (bounded rows)."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["json_rows", "render_table", "render_vertical", "unique_names"]

MAX_CELL = 60


def _cell(value: object) -> str:
    text = "NULL" if value is None else str(value).replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


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
    return [dict(zip(names, row, strict=True)) for row in _rows(table)]


def render_table(table: pa.Table, max_rows: int) -> str:
    rows = [[_cell(v) for v in row] for row in _rows(table.slice(0, max_rows))]
    names = table.schema.names
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = [" | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
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
