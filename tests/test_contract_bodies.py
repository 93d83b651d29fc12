"""Every field the connectors read from a stand-in's answer has the contract's shape (../shared/api-contracts;
skipped when it is absent): GitHub pull requests (list and detail, both API versions) against the OpenAPI schemas,
search, issues, commits and repositories against the spec's examples, Jira's ``/search/jql`` against its OpenAPI
schema and composed example, Linear's answer to the contract's own request against its example answer (Salesforce's
describe and query pages are checked in test_salesforce_soql.py, MCP's messages by the SDK's models). The fields
read are the connectors' own ``WireField`` paths, so a new column is checked the day it is added.

Only read fields are held to the schemas: the stand-in leaves out what no connector reads (the dozens of
``*_url`` fields of nested users and repositories), which keeps its pages small for the benchmarks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import jsonschema
import pytest

from connectors.decode import WireField
from connectors.github import commits, issues, repositories, search
from connectors.github.tables import DETAIL_WIRE, PULL_WIRE
from connectors.jira.tables import issue_wire
from tests.conftest import SHARED

CONTRACTS = SHARED / "api-contracts"
pytestmark = pytest.mark.skipif(not CONTRACTS.exists(), reason="../shared/api-contracts is not present")
VERSIONS = ("2022-11-28", "2026-03-10")
_MISSING = object()



def _paths(wire: Mapping[str, WireField]) -> list[tuple[str, ...]]:
    """The JSON paths a connector reads; ``[]`` stands for every element of a list (label names)."""
    return [(*w.path, "[]", "name") if w.convert == "names" else w.path for w in wire.values()]


def _openapi(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` becomes "or null", ``#/components/schemas`` refs local."""
    if isinstance(node, dict):
        out = {k: _openapi(v) for k, v in node.items() if k != "example"}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
        return {"anyOf": [out, {"type": "null"}]} if out.pop("nullable", False) else out
    return [_openapi(x) for x in node] if isinstance(node, list) else node


class _Schema:
    """A contract schema bundle, walked along one JSON path at a time."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = _openapi(bundle)
        self.defs = self.bundle.get("$defs", {})
        self.validators: dict[int, Any] = {}  # compiled once per schema node: leaves repeat for every row

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.defs[node["$ref"].rsplit("/", 1)[1]]
        alternatives = [self.resolve(a) for a in node.get("anyOf", []) + node.get("allOf", [])
                        if a != {"type": "null"}]
        return alternatives[0] if len(alternatives) == 1 and "properties" not in node else node

    def nullable(self, node: dict[str, Any]) -> bool:
        while "$ref" in node:
            node = self.defs[node["$ref"].rsplit("/", 1)[1]]
        return {"type": "null"} in node.get("anyOf", []) or any(self.nullable(a) for a in node.get("allOf", []))

    def check(self, value: Any, path: tuple[str, ...], node: dict[str, Any] | None = None, at: str = "") -> None:
        """``value`` (a whole answer) along ``path`` against the schema: present where required, null only where
        nullable, the leaf valid."""
        node = node if node is not None else self.bundle
        if not path:
            validator = self.validators.get(id(node))
            if validator is None:
                validator = self.validators[id(node)] = jsonschema.Draft202012Validator({**node, "$defs": self.defs})
            validator.validate(value)
            return
        if value is None:
            assert self.nullable(node), f"{at} is null; the contract does not allow it"
            return
        step, rest = path[0], path[1:]
        resolved = self.resolve(node)
        if step == "[]":
            assert isinstance(value, list), f"{at} is not a list"
            for n, item in enumerate(value):
                self.check(item, rest, resolved["items"], f"{at}[{n}]")
            return
        assert isinstance(value, dict), f"{at} is not an object"
        properties = resolved.get("properties", {})
        assert step in properties, f"{at}.{step} is not in the contract"
        if step not in value:
            assert step not in resolved.get("required", ()), f"{at}.{step} is required by the contract"
            return
        self.check(value[step], rest, properties[step], f"{at}.{step}")


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null")


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if step == "[]":  # the first element; an empty list has nothing to compare (as null)
            value = (value[0] if value else None) if isinstance(value, list) else _MISSING
        elif isinstance(value, dict):
            value = value.get(step, _MISSING)
        if value is _MISSING or value is None:
            return value
    return value


def _like_example(ours: Any, example: Any, paths: list[tuple[str, ...]], what: str,
                  optional: frozenset[tuple[str, ...]] = frozenset()) -> None:
    """Each read field: where the example has it, ours has it too (unless the contract says it may be missing),
    with the same JSON kind (or null)."""
    for path in paths:
        theirs, mine = _at(example, path), _at(ours, path)
        if theirs is _MISSING or (mine is _MISSING and path in optional):
            continue
        assert mine is not _MISSING, f"{what}: {'.'.join(path)} is missing"
        assert None in (theirs, mine) or _kind(theirs) == _kind(mine), \
            f"{what}: {'.'.join(path)} is {_kind(mine)}, the contract's example has {_kind(theirs)}"


def _get(box: Any, path: str, version: str = VERSIONS[0], **params: Any) -> Any:
    info = box.info()["github"]
    reply = httpx.get(f"{info['base_url']}{path}", params=params, headers={
        "Authorization": f"Bearer {info['token']}", "User-Agent": "omnisql-tests", "X-GitHub-Api-Version": version})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _example(name: str) -> Any:
    return json.loads((CONTRACTS / "github" / name).read_text())


@pytest.mark.parametrize("version", VERSIONS)
def test_pull_requests_have_the_schemas_shapes(sandbox: Any, version: str) -> None:
    listed = _get(sandbox, "/repos/acme-corp/web-frontend/pulls", version, state="all", per_page=100)
    simple = _Schema(_example("pull-request-simple.schema.json"))
    for pull in listed:
        for path in _paths(PULL_WIRE):
            simple.check(pull, path)
    assert {p["labels"] != [] for p in listed} == {True, False} and {p["merged_at"] is None for p in listed} == \
        {True, False}, "the page holds both shapes of each nullable field"
    full = _Schema(_example("pull-request.schema.json"))
    detail = _get(sandbox, f"/repos/acme-corp/web-frontend/pulls/{listed[0]['number']}", version)
    for path in _paths(PULL_WIRE) + _paths(DETAIL_WIRE):
        full.check(detail, path)


def test_search_issues_commits_and_repositories_look_like_the_examples(sandbox: Any) -> None:
    found = _get(sandbox, "/search/issues", q="is:pr org:acme-corp is:merged", per_page=5)
    example = _example("search-issues.example.json")
    assert set(example) <= set(found), "total_count, incomplete_results, search_type, items"
    assert _kind(found["total_count"]) == "number" and found["incomplete_results"] is False
    paths = _paths(search._WIRE) + [("repository_url",)]
    _like_example(found["items"][0], example["items"][0], paths, "search item")
    recorded = json.loads((CONTRACTS / "github" / "recorded-search-issues.json").read_text())
    _like_example(found["items"][0], recorded["exchanges"][0]["response"]["items"][0], paths, "recorded search")
    for route, name, wire in (("/repos/acme-corp/web-frontend/issues", "issues-list.example.json", issues._WIRE),
                              ("/repos/acme-corp/web-frontend/commits", "commits-list.example.json", commits._WIRE),
                              ("/orgs/acme-corp/repos", "org-repos.example.json", repositories._WIRE)):
        ours = _get(sandbox, route, per_page=30, **({"state": "all"} if "issues" in route else {}))
        assert isinstance(ours, list) and ours, route
        for item in ours:
            _like_example(item, _example(name)[0], _paths(wire), route)


def test_jira_search_has_the_openapi_shape(sandbox: Any) -> None:
    slice_ = json.loads((CONTRACTS / "jira" / "openapi-search-slice.json").read_text())
    schema = {**_openapi(slice_["schemas"]["SearchAndReconcileResults"]), "$defs": _openapi(slice_["schemas"])}
    info = sandbox.info()["jira"]
    wire = issue_wire("customfield_10016", "customfield_10100")
    fields = sorted({w.path[1] for w in wire.values() if len(w.path) > 1})
    reply = httpx.post(f"{info['base_url']}/rest/api/3/search/jql", auth=(info["email"], info["api_token"]),
                       json={"jql": "project = WEB ORDER BY created DESC", "maxResults": 100, "fields": fields})
    body = reply.json()
    jsonschema.validate(body, schema)
    example = json.loads((CONTRACTS / "jira" / "search-jql.composed-example.json").read_text())["response_page1"]
    for issue in body["issues"]:
        _like_example(issue, example["issues"][0], _paths(wire), "jira issue",  # CONTRACT.md: "may be null or
                      optional=frozenset({("fields", "assignee", "emailAddress")}))  # missing" (privacy settings)
    assert {i["fields"].get("assignee") is None for i in body["issues"]} == {True, False}


def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path to a scalar (lists through their first element), for comparing an answer with an example."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return _leaves(value[0], (*path, "[]")) if value else [path]
    return [path]


def test_linear_answers_the_contracts_request_in_its_shape(sandbox: Any) -> None:
    request = json.loads((CONTRACTS / "linear" / "issues-request.example.json").read_text())
    example = json.loads((CONTRACTS / "linear" / "issues-response.example.json").read_text())
    info = sandbox.info()["linear"]
    variables = {"first": 50, "after": None, "filter": {"team": {"key": {"eq": "MOB"}}}}  # the seed's teams
    reply = httpx.post(f"{info['base_url']}/graphql", json={"query": request["query"], "variables": variables},
                       headers={"Authorization": info["api_key"], "Content-Type": "application/json"})
    body = reply.json()
    assert reply.status_code == 200 and "errors" not in body, body
    nodes = body["data"]["issues"]["nodes"]
    assert nodes and set(body["data"]["issues"]) == set(example["data"]["issues"])
    for node in nodes:
        for other in example["data"]["issues"]["nodes"]:
            _like_example(node, other, _leaves(other), "linear issue")
    page_info = example["data"]["issues"]["pageInfo"]
    _like_example(body["data"]["issues"]["pageInfo"], page_info, _leaves(page_info), "linear pageInfo")
