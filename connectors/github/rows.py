"""The tail every per-repository GitHub listing shares (issues, commits, reviews): a page's decoded columns turned
into the request's rows."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from connectors.decode import map_values
from connectors.filtering import filter_batch
from core.types import ScanRequest

__all__ = ["request_rows"]


def request_rows(cols: dict[str, pa.Array], schema: pa.Schema, out: pa.Schema, repo_teams: Mapping[str, str],
                 request: ScanRequest) -> pa.RecordBatch:
    """``cols`` (with ``repo``) as the rows ``request`` asked for: ``team_id`` from the tenant's repo → team
    mapping, every condition re-checked (row filters and the local residual), only the requested columns."""
    if "team_id" in schema.names:
        cols["team_id"] = map_values(cols["repo"], repo_teams)
    batch = pa.RecordBatch.from_pydict({n: cols[n] for n in schema.names}, schema=schema)
    batch = filter_batch(batch, request.row_filters, request.residual)
    return pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
