"""Delta refresh for manifest tables (``core.types.ChangeListing``): the records changed since a time, listed with
the manifest's own ``column >= since`` filter and narrowed only by conditions on the ``keep`` columns, so a record
that stopped matching the query still comes back and leaves the cached copy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from connectors.declarative.options import build_options
from connectors.filtering import filter_batch
from core.types import Changes, Predicate, ScanRequest, ScanStats

if TYPE_CHECKING:
    from connectors.declarative.connector import ManifestConnector

__all__ = ["scan_changes"]


async def scan_changes(connector: ManifestConnector, request: ScanRequest, since: float, stats: ScanStats
                       ) -> Changes | None:
    """None when the table declares no ``changes``, the request has a LIMIT, or the filter cannot be sent."""
    table = connector.config.manifest.table(request.table)
    spec = table.changes
    if spec is None or request.limit is not None:
        return None
    moment = datetime.fromtimestamp(since - spec.slack_s, UTC).replace(tzinfo=None)  # naive UTC, as the planner's
    recent = Predicate(spec.column, ">=", (moment,))
    kept = tuple(p for p in request.predicates if p.column in spec.keep)
    key = table.primary_key[0]
    columns = tuple(dict.fromkeys((*request.columns, key, *(p.column for p in request.row_filters))))
    listing = ScanRequest(request.table, columns, (*kept, recent), scope=request.scope, credential=request.credential)
    if str(recent) not in build_options(table, listing.predicates, table.request.language).sent:
        return None  # the API would list everything: a full fetch is the honest way
    out = connector.specs[request.table].schema_for(request.columns)
    keys: list[pa.Array] = []
    batches: list[pa.RecordBatch] = []
    async for batch in connector.scan(listing, stats):
        keys.append(batch.column(key))
        matching = filter_batch(batch, request.row_filters, request.residual)
        batches.append(pa.RecordBatch.from_arrays([matching.column(n) for n in out.names], schema=out))
    key_type = connector.specs[request.table].column(key).type
    return Changes(pa.concat_arrays(keys) if keys else pa.array([], key_type), tuple(batches))
