"""The engine facade the Flight server talks to: catalog + planner + executor over a set of connectors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.types import Connector
from planner.catalog import Catalog
from planner.control import QueryControl
from planner.duck import Duck
from planner.estimates import Estimator
from planner.execute import BackgroundLoop, Executor, QueryResult
from planner.parameters import Parameters
from planner.plan import FetchPlan
from planner.planner import Planner

__all__ = ["Engine"]


class Engine:
    def __init__(self, connectors: Mapping[str, Connector], loop: BackgroundLoop, pushdown: bool = True,
                 deadline_s: float = 60.0, join_strategy: str = "auto") -> None:
        self.connectors = dict(connectors)
        self.catalog = Catalog(spec for c in self.connectors.values() for spec in c.tables())
        self.duck = Duck()
        self.loop = loop
        self.deadline_s = deadline_s
        self.estimator = Estimator()  # shared: the executor records what it fetched, the planner estimates with it
        self.planner = Planner(self.catalog, self.duck, pushdown=pushdown, join_strategy=join_strategy,
                               estimator=self.estimator)
        self.executor = Executor(self.connectors, self.duck, loop, deadline_s=deadline_s, estimator=self.estimator)

    def control(self) -> QueryControl:
        """A fresh deadline/cancellation for one query (``query_deadline_s`` from the tenant config)."""
        return QueryControl(self.deadline_s)

    def plan(self, sql: str, params: Sequence[Any] | Parameters = (), control: QueryControl | None = None
             ) -> FetchPlan:
        return self.planner.plan(sql, params, control)

    def query(self, sql: str, params: Sequence[Any] | Parameters = (), control: QueryControl | None = None
              ) -> QueryResult:
        """Plan and run under one control: the deadline covers planning, fetching and DuckDB."""
        control = control or self.control()
        return self.executor.execute(self.plan(sql, params, control), control)
