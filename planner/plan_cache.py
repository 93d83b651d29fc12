"""Plan once per statement. A Flight SQL client asks for one query up to three times — CreatePreparedStatement,
GetFlightInfo, DoGet — and a dashboard sends the same statement again and again; each would parse, qualify,
price and bind it anew. Plans are kept by everything that decides them:

- the statement text (without ``EXPLAIN``: EXPLAIN shows the very plan the run then executes),
- the bound values with their Arrow types (pushdown sends literal values; a stand-in is not a value),
- the principal's security scope (policy decisions, row filters with their principal values, masks),
- the session's default schema, the catalog version, and
- the statistics' version: when a recorded listing size is new or moved by more than a tenth, plans priced on
  the old sizes are made again (as they are after ``max_age_s`` anyway).

Bounded (least recently used go first); a plan holds no rows, only the statement's shape."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable

from planner.parameters import Parameters
from planner.plan import FetchPlan

__all__ = ["PlanCache", "plan_key"]


def plan_key(sql: str, params: Parameters, scope: str, default_schema: str | None, catalog_version: int,
             statistics_version: int, count_listings: bool) -> Hashable:
    values = tuple((str(p.type), repr(p.as_py())) for p in params)
    return (sql, params.unbound, values, scope, default_schema, catalog_version, statistics_version, count_listings)


class PlanCache:
    def __init__(self, max_entries: int = 1024, max_age_s: float = 60.0) -> None:
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._plans: OrderedDict[Hashable, tuple[float, FetchPlan]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> FetchPlan | None:
        with self._lock:
            found = self._plans.get(key)
            if found is None or time.monotonic() - found[0] > self.max_age_s:
                self.misses += 1
                return None
            self._plans.move_to_end(key)
            self.hits += 1
            return found[1]

    def put(self, key: Hashable, plan: FetchPlan) -> None:
        with self._lock:
            self._plans[key] = (time.monotonic(), plan)
            self._plans.move_to_end(key)
            while len(self._plans) > self.max_entries:
                self._plans.popitem(last=False)
