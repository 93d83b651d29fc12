"""The planner's verdicts as frozen, printable values: what each scan asks of its API, and the final SQL."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from connectors.types import Predicate, ScanRequest, TableSpec

__all__ = ["FetchPlan", "PushedCondition", "ScanStep"]


@dataclass(frozen=True)
class PushedCondition:
    predicate: Predicate
    exact: bool

    def __str__(self) -> str:
        return f"{self.predicate} [{'exact' if self.exact else 'inexact'}]"


@dataclass(frozen=True)
class ScanStep:
    """One table reference of the query, fetched as one or more API requests (IN lists split in batches)."""

    index: int
    alias: str
    spec: TableSpec
    columns: tuple[str, ...]
    pushed: tuple[PushedCondition, ...]
    local: tuple[str, ...]
    requests: tuple[ScanRequest, ...]
    limit: int | None = None
    strategy: str = "scan"
    est_pages: int = 1
    est_calls: int = 1

    @property
    def view_name(self) -> str:
        return f"__scan_{self.index}"

    @property
    def schema(self) -> pa.Schema:
        return self.spec.schema_for(self.columns)

    def describe(self) -> str:
        pushed = "; ".join(map(str, self.pushed)) or "-"
        local = "; ".join(self.local) or "-"
        return (f"[{self.index}] {self.strategy} {self.spec.qualified_name} AS {self.alias} "
                f"columns=({', '.join(self.columns)}) pushed=({pushed}) local=({local}) limit={self.limit} "
                f"requests={len(self.requests)} est_calls={self.est_calls}")


@dataclass(frozen=True)
class FetchPlan:
    steps: tuple[ScanStep, ...]
    final_sql: str
    schema: pa.Schema
    explain: str | None = None  # "EXPLAIN" or "EXPLAIN ANALYZE" when the query asked for its plan
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return "\n".join([*(s.describe() for s in self.steps), f"final: {self.final_sql}"])
