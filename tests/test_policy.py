"""The policy model without a server: parsing and its errors, first-match decisions, principal variables bound
as literals (quotes stay values), scopes, and statistics that never cross scopes."""

from __future__ import annotations

import logging
import re

import pytest
from sqlglot import exp

from connectors.github.tables import PULL_REQUESTS, USERS
from connectors.jira.tables import ISSUES
from core.errors import EntitlementDenied
from core.types import Predicate
from planner.estimates import Statistics
from security.masks import Mask
from security.policy import PolicyError, parse_policy
from security.principals import Principal

RULES = {"default": "deny", "rules": [
    {"name": "admins", "match": {"roles": ["admin"]}, "tables": ["*"]},
    {"name": "no users for contractors", "match": {"attributes": {"kind": "contractor"}}, "tables": ["github.users"],
     "access": "deny"},
    {"name": "team rows", "match": {"roles": ["dev"]}, "tables": ["github.pull_requests", "jira.*"],
     "row_filter": "team_id = :user.team", "masks": {"author": "redact", "diff_link": "deny",
                                                      "author_email": {"partial": 3}}},
]}
POLICY = parse_policy(RULES, b"k")
DEV = Principal("dev", "t", ("dev",), {"team": "mobile"})


def test_first_matching_rule_decides_and_unmatched_tables_are_denied() -> None:
    admin = Principal("root", "t", ("admin", "dev"))
    assert POLICY.decide(admin, PULL_REQUESTS).rule == "admins"
    assert not POLICY.decide(admin, PULL_REQUESTS).restricts
    decision = POLICY.decide(DEV, PULL_REQUESTS)
    assert decision.rule == "team rows" and decision.masks == {"author": Mask("redact"),
                                                               "author_email": Mask("partial", 3)}
    assert decision.denied_columns == {"diff_link"}
    nobody = POLICY.decide(Principal("x", "t"), PULL_REQUESTS)
    assert (nobody.allowed, nobody.rule) == (False, "default")
    with pytest.raises(EntitlementDenied, match="you may not read github.pull_requests"):
        nobody.require()
    contractor = Principal("c", "t", ("admin",), {"kind": "contractor"})
    assert POLICY.decide(contractor, USERS).allowed  # "admins" comes first


@pytest.mark.parametrize("hostile", ["x' OR '1'='1", "'; DROP TABLE t; --", 'a"b', "\\", ":user.team"])
def test_principal_values_are_bound_as_literals(hostile: str) -> None:
    principal = Principal("dev", "t", ("dev",), {"team": hostile})
    row_filter = POLICY.decide(principal, PULL_REQUESTS).row_filter
    assert isinstance(row_filter, exp.EQ)
    assert isinstance(row_filter.expression, exp.Literal) and row_filter.expression.this == hostile
    assert [c.name for c in row_filter.find_all(exp.Column)] == ["team_id"]


def test_a_missing_attribute_admits_no_row() -> None:
    row_filter = POLICY.decide(Principal("dev", "t", ("dev",)), PULL_REQUESTS).row_filter
    assert row_filter is not None and isinstance(row_filter.expression, exp.Null)


@pytest.mark.parametrize(("section", "message"), [
    ({"default": "maybe"}, "policy.default must be allow or deny"),
    ({"rulez": []}, "unknown key"),
    ({"rules": [{"name": "r", "acess": "deny"}]}, "policy rule 'r': unknown key"),
    ({"rules": [{"name": "r", "access": "block"}]}, "access must be allow or deny"),
    ({"rules": [{"name": "r", "masks": {"a": "scramble"}}]}, "mask for a must be one of"),
    ({"rules": [{"name": "r", "row_filter": "team_id = (SELECT 1)"}]}, "without subqueries"),
    ({"rules": [{"name": "r", "row_filter": "team_id = = 1"}]}, "row_filter is not a SQL condition"),
    ({"rules": [{"name": "r", "tables": [1]}]}, "tables must be a list of strings"),
])
def test_policy_errors_name_the_rule_and_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(section, b"")


def test_row_filters_must_name_columns_of_their_tables() -> None:
    policy = parse_policy({"rules": [{"name": "bad", "tables": ["jira.issues"], "row_filter": "team_id = 'x'"}]}, b"")
    with pytest.raises(PolicyError, match="'bad': row_filter names \\['team_id'\\], which jira.issues does not"):
        policy.validate([PULL_REQUESTS, ISSUES])


def test_scopes_separate_principals_that_see_differently() -> None:
    specs = [PULL_REQUESTS, USERS, ISSUES]
    mobile, also_mobile = DEV, Principal("dev2", "t", ("dev",), {"team": "mobile"})
    web = Principal("dev3", "t", ("dev",), {"team": "web"})
    assert POLICY.scope(mobile, specs) == POLICY.scope(also_mobile, specs)
    assert POLICY.scope(mobile, specs) != POLICY.scope(web, specs)
    assert POLICY.scope(mobile, specs) != POLICY.scope(Principal("r", "t", ("admin",)), specs)
    other_tenant = Principal("dev", "u", ("dev",), {"team": "mobile"})
    assert POLICY.scope(mobile, specs) != POLICY.scope(other_tenant, specs)


def test_learned_statistics_stay_in_their_scope() -> None:
    shared = Statistics()
    shared.scoped("t:admin").record(ISSUES, (), 1200)
    assert shared.scoped("t:admin").rows(ISSUES, ()) == 1200
    assert shared.scoped("t:mobile").rows(ISSUES, ()) is None
    shared.scoped("t:mobile").record(ISSUES, (Predicate("team", "=", ("mobile",)),), 400)
    assert shared.scoped("t:admin").rows(ISSUES, (Predicate("team", "=", ("mobile",)),)) is None


def test_keyed_masks_need_a_key_and_masks_fit_their_column() -> None:
    keyless = parse_policy({"rules": [{"name": "q", "tables": ["github.users"], "masks": {"email": "email"}}]}, b"")
    with pytest.raises(PolicyError, match="'q': hash/email masks \\(email\\) need a key of at least 16 bytes"):
        keyless.validate([USERS])
    listy = parse_policy({"rules": [{"name": "l", "tables": ["jira.issues"], "masks": {"labels": "hash"}}]}, b"k" * 32)
    with pytest.raises(PolicyError, match="'l': a hash mask cannot apply to jira.issues.labels"):
        listy.validate([ISSUES])


@pytest.mark.parametrize(("pattern", "hint"), [("github.pull_request", "did you mean github.pull_requests"),
                                                ("GitHub.*", "write it in lower case: 'github.*'"),
                                                ("jira.xyz", "the tables are")])
def test_a_table_pattern_matching_no_table_of_its_connector_fails_start_up(pattern: str, hint: str) -> None:
    """A typo'd pattern would apply its masks and filters to nothing (with ``default: allow``, the column served
    raw): refused at start-up with the names it may have meant."""
    policy = parse_policy({"default": "allow", "rules": [
        {"name": "hide authors", "match": {"roles": ["qa"]}, "tables": [pattern], "masks": {"author": "redact"}}]},
        b"k" * 32)
    with pytest.raises(PolicyError, match=re.escape(hint)):
        policy.validate([PULL_REQUESTS, USERS, ISSUES])


def test_a_pattern_for_a_connector_this_deployment_lacks_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    policy = parse_policy({"default": "deny", "rules": [
        {"name": "sales", "match": {"roles": ["qa"]}, "tables": ["salesforce.*", "github.*"]}]}, b"k" * 32)
    with caplog.at_level(logging.WARNING, logger="omnisql.policy"):
        policy.validate([PULL_REQUESTS])
    assert any("salesforce.*" in r.getMessage() for r in caplog.records)
