"""``jira.issues`` declared as data. Story points and branch are per-tenant custom fields."""

from __future__ import annotations

import pyarrow as pa

from connectors.decode import WireField
from core.types import ColumnSpec, FilterCap, TableSpec, ops

TS = pa.timestamp("us", tz="UTC")
EQ_IN = ops("=", "IN")
ORDERED = ops("=", "<>", "IN", "<", "<=", ">", ">=", "BETWEEN", "IS_NULL")
RANGE = ops("<", "<=", ">", ">=", "BETWEEN")
CUSTOMER_FIELD = "customfield_10200"

ISSUES = TableSpec(
    schema_name="jira",
    name="issues",
    description="Issues of the configured Jira projects (POST /rest/api/3/search/jql).",
    primary_key=("issue_key",),
    delta_refresh=True,  # JQL updated >= "-Nm" lists what changed since a time (scan_changes)
    row_estimate=600,
    page_size=100,
    order_pushdown=("created_at", "updated_at"),  # JQL ORDER BY created|updated ASC|DESC
    columns=(
        ColumnSpec("issue_key", pa.string(), "Issue key, e.g. WEB-12", nullable=False, distinct_estimate=600,
                   # LIKE 'WEB-%' narrows to the projects whose keys can start that way
                   filter=FilterCap(ops("=", "IN", "<>", "LIKE_PREFIX"), exact=False, max_in=100,
                                    example="issue_key = 'WEB-12'")),
        ColumnSpec("summary", pa.string(), "Summary"),
        # Jira matches status names case-insensitively; SQL does not, so the API only narrows.
        ColumnSpec("status", pa.string(), "Workflow status name, e.g. 'In Progress'", nullable=False,
                   filter=FilterCap(ops("=", "IN", "<>"), exact=False, max_in=50,
                                    example="status = 'In Progress'")),
        # A text custom field: JQL can only do ~ (contains), which narrows.
        ColumnSpec("branch_name", pa.string(), "Branch custom field (tenant-configured)", distinct_estimate=450,
                   filter=FilterCap(EQ_IN, exact=False, max_in=50, example="branch_name = 'feature/x'")),
        ColumnSpec("story_points", pa.float64(), "Story points custom field (tenant-configured)",
                   filter=FilterCap(ORDERED, exact=True, max_in=100, example="story_points >= 5")),
        ColumnSpec("assignee", pa.string(), "Assignee display name"),
        ColumnSpec("assignee_email", pa.string(), "Assignee email; null when the user hides it"),
        ColumnSpec("team", pa.string(), "Team, from the tenant's project → team mapping",
                   filter=FilterCap(EQ_IN, exact=True, max_in=10, example="team = 'web'")),
        ColumnSpec("project", pa.string(), "Project key", nullable=False,
                   filter=FilterCap(ops("=", "IN", "<>"), exact=False, max_in=50,
                                    example="project = 'WEB'")),
        ColumnSpec("labels", pa.list_(pa.string()), "Labels"),
        ColumnSpec("created_at", TS, "Creation time (UTC)",
                   filter=FilterCap(RANGE, exact=False, example="created_at >= TIMESTAMP '2026-01-01'")),
        ColumnSpec("updated_at", TS, "Last update (UTC)",
                   filter=FilterCap(RANGE, exact=False, example="updated_at >= TIMESTAMP '2026-01-01'")),
        # A single-select custom field; Jira matches option values case-insensitively, so the API only narrows.
        ColumnSpec("customer", pa.string(), "Customer custom field (tenant-configured), e.g. a Salesforce account "
                   "name", distinct_estimate=100,
                   filter=FilterCap(EQ_IN, exact=False, max_in=50, example="customer = 'Acme Corp'")),
    ),
)


def issue_wire(story_points_field: str, branch_field: str, customer_field: str = CUSTOMER_FIELD
               ) -> dict[str, WireField]:
    return {
        "issue_key": WireField(("key",)),
        "summary": WireField(("fields", "summary")),
        "status": WireField(("fields", "status", "name")),
        "branch_name": WireField(("fields", branch_field)),
        "story_points": WireField(("fields", story_points_field)),
        "assignee": WireField(("fields", "assignee", "displayName")),
        "assignee_email": WireField(("fields", "assignee", "emailAddress")),
        "project": WireField(("fields", "project", "key")),
        "labels": WireField(("fields", "labels")),
        "created_at": WireField(("fields", "created"), "timestamp"),
        "updated_at": WireField(("fields", "updated"), "timestamp"),
        "customer": WireField(("fields", customer_field, "value")),  # an option: {"id", "value"}
    }


def api_fields(columns: set[str], story_points_field: str, branch_field: str,
               customer_field: str = CUSTOMER_FIELD) -> list[str]:
    """The ``fields`` to request from search: only what the projection needs (projection pushdown)."""
    by_column = {"summary": "summary", "status": "status", "branch_name": branch_field,
                 "story_points": story_points_field, "assignee": "assignee", "assignee_email": "assignee",
                 "team": "project", "project": "project", "labels": "labels", "created_at": "created",
                 "updated_at": "updated", "customer": customer_field}
    return sorted({by_column[c] for c in columns if c in by_column}) or ["id"]
