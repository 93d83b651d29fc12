"""Text rendering for the CLI: an aligned table for results, one block per step for EXPLAIN (bounded rows)."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["render_table", "render_vertical"]

MAX_CELL = 60


def _cell(value: object) -> str:
    text = "NULL" if value is None else str(value).replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def render_table(table: pa.Table, max_rows: int) -> str:
    rows = [[_cell(v) for v in row.values()] for row in table.slice(0, max_rows).to_pylist()]
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
    for row in table.slice(0, max_rows).to_pylist():
        width = max(len(k) for k in row)
        blocks.append("\n".join(f"{k.rjust(width)}: {v}" for k, v in row.items() if v is not None))
    return "\n\n".join(blocks)
