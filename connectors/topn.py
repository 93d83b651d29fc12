"""Top-N over sorted pages: stop paging once ``limit`` rows are in and the sort key has moved past the N-th
row's value, so every row tied with the N-th is included and the engine's ORDER BY ... LIMIT stays exact."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["TopN"]


class TopN:
    def __init__(self, limit: int, column: str) -> None:
        self.limit = limit
        self.column = column
        self.seen = 0
        self.nth: Any = None
        self.done = False

    def add(self, batch: pa.RecordBatch) -> bool:
        """Account for one sorted batch; True once no later row can belong to the top N."""
        if self.done or batch.num_rows == 0:
            return self.done
        values = batch.column(self.column)
        if self.nth is None and self.seen + batch.num_rows >= self.limit:
            self.nth = values[self.limit - self.seen - 1].as_py()
        self.seen += batch.num_rows
        self.done = self.nth is not None and values[batch.num_rows - 1].as_py() != self.nth
        return self.done
