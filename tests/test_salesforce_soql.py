"""Salesforce pieces on their own: SOQL literals against the stand-in's parser, the error handler, the budget
from ``Sforce-Limit-Info``, the tenant section, and the stand-in against ../shared/api-contracts/salesforce
(skipped when that folder is absent)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.requester.reply import Reply
from connectors.salesforce.connector import SalesforceConfig, SalesforceConnector
from connectors.salesforce.errors import DAILY_LIMIT_WAIT_S, SalesforceErrors, api_usage
from connectors.salesforce.factory import parse
from connectors.salesforce.soql import FieldRef, build_where, like_prefix, literal, quote
from connectors.settings import SettingError, Settings
from core.types import Predicate, ScanRequest, ScanStats
from sandbox.salesforce_soql import tokenize
from sandbox.server import Sandbox, start_sandbox
from tests.conftest import SHARED

CONTRACT = SHARED / "api-contracts" / "salesforce"
needs_shared = pytest.mark.skipif(not CONTRACT.exists(), reason="../shared/api-contracts is not present")
NASTY = ["plain", "O'Reilly", 'say "hi"', "back\\slash", "\\'", "new\nline\r\n", "tab\t", "bell\b\f", "nul\x00x",
         "del\x7f", "50%", "under_score", "%_\\%", "ünï ☃ 𝄞", "' OR Name != null OR Name = '", "\\u0027", ""]


@pytest.mark.parametrize("value", NASTY)
def test_a_quoted_value_parses_back_to_itself(value: str) -> None:
    (token, eof) = tokenize(quote(value))
    assert token.kind == "string" and eof.kind == "eof"
    assert token.value[0] == value


@pytest.mark.parametrize("value", NASTY)
def test_a_like_prefix_matches_exactly_what_starts_with_it(value: str) -> None:
    (token, _) = tokenize(like_prefix(value))
    pattern = re.compile(token.value[1], re.IGNORECASE | re.DOTALL)
    assert pattern.fullmatch(value + "tail") and pattern.fullmatch(value)
    if value:
        assert not pattern.fullmatch("x" + value) or value.startswith("x")


def test_literals_follow_the_field_type() -> None:
    assert literal(1e20, "currency") == ("100000000000000000000", True)
    assert literal(0.1, "double") == ("0.1", True)
    assert literal(float("nan"), "double") is None and literal(True, "int") is None
    assert literal(date(2026, 10, 1), "date") == ("2026-10-01", True)
    assert literal(datetime(2026, 1, 1, 12, 0, 0), "date") is None  # a timestamp on a date field: not pushed
    assert literal(datetime(2026, 1, 1, 12, 0, 0), "datetime") == ("2026-01-01T12:00:00Z", True)
    assert literal(datetime(2026, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC), "datetime", up=True) == \
        ("2026-01-01T12:00:01Z", False)
    assert literal(False, "boolean") == ("false", True)


def test_where_says_whether_soql_is_exact() -> None:
    fields = {"name": FieldRef("Name", "string"), "amount": FieldRef("Amount", "currency")}
    assert build_where([Predicate("amount", "<>", (5,))], fields) == ("(Amount != 5 AND Amount != null)", True)
    assert build_where([Predicate("name", "=", ("Acme",))], fields) == ("Name = 'Acme'", False)
    assert build_where([Predicate("name", "<>", ("Acme",))], fields) == ("", False)  # left to the re-check
    assert build_where([Predicate("amount", "IS_NULL")], fields) == ("Amount = null", True)


def _reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply("GET", httpx.URL("https://x.my.salesforce.com/q"), status,
                 httpx.Headers({"content-type": "application/json", **(headers or {})}), json.dumps(body).encode())


def test_error_handler_reads_salesforce_answers() -> None:
    errors = SalesforceErrors()
    limit = _reply(403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    limited = errors.limited(limit)
    assert limited is not None and limited.wait_s == DAILY_LIMIT_WAIT_S
    assert errors.limited(_reply(403, [{"message": "no", "errorCode": "INSUFFICIENT_ACCESS"}])) is None
    assert errors.limited(_reply(429, [], {"retry-after": "3"})) == type(limited)(3.0)
    bad = _reply(400, [{"message": "unexpected token: 'FORM'", "errorCode": "MALFORMED_QUERY"}])
    assert errors.messages(bad) == ["MALFORMED_QUERY: unexpected token: 'FORM'"]
    assert api_usage(_reply(200, {}, {"sforce-limit-info": "api-usage=18/15000; per-app-api-usage=1/250"})) == \
        (18, 15000)


def _settings(**values: Any) -> Settings:
    env = {"SF_ID": "id", "SF_SECRET": "secret", "SF_REFRESH": "refresh"}
    return Settings("connectors.salesforce", {"base_url": "https://acme.my.salesforce.com", "client_id_env": "SF_ID",
                                              "client_secret_env": "SF_SECRET", **values}, env)


def test_the_tenant_section() -> None:
    config = parse(_settings(batch_size=500))
    assert (config.grant, config.client_secret, config.batch_size, config.api_version) == \
        ("client_credentials", "secret", 500, "62.0")
    refresh = parse(_settings(auth="refresh_token", refresh_token_env="SF_REFRESH", client_secret_env=None))
    assert (refresh.grant, refresh.refresh_token, refresh.client_secret) == ("refresh_token", "refresh", "")
    for bad, message in (({"auth": "password"}, "auth must be one of"), ({"api_version": "30.0"}, "retired"),
                         ({"batch_size": 5000}, "at most 2000"), ({"client_secret_env": "NOPE"}, "NOPE")):
        with pytest.raises(SettingError, match=message):
            parse(_settings(**bad))
    assert "secret" not in repr(config) and "refresh" not in repr(refresh).replace("refresh_token", "")


def test_tenant_yaml_serves_salesforce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config import load_config

    for name in ("SF_ID", "SF_SECRET", "T"):
        monkeypatch.setenv(name, "x")
    path = tmp_path / "t.yaml"
    path.write_text("connectors:\n  salesforce:\n    base_url: https://acme.my.salesforce.com\n"
                    "    client_id_env: SF_ID\n    client_secret_env: SF_SECRET\n    batch_size: 200\n"
                    "principals: [{user: a, token_env: T}]\n")
    (entry,) = [c for c in load_config(path).connectors if c.name == "salesforce"]
    assert entry.type == "salesforce" and entry.config.batch_size == 200


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox()
    yield running
    running.stop()


class _Gate:
    def __init__(self) -> None:
        self.seen: list[tuple[int | None, float | None]] = []

    async def acquire(self) -> None:
        return None

    async def observe(self, remaining: int | None, blocked_for_s: float | None) -> None:
        self.seen.append((remaining, blocked_for_s))


def test_sforce_limit_info_feeds_the_budget(sandbox: Sandbox) -> None:
    info = sandbox.info()["salesforce"]

    async def run() -> tuple[ScanStats, _Gate, int]:
        async with httpx.AsyncClient() as http:
            connector = SalesforceConnector(SalesforceConfig(info["base_url"], info["client_id"],
                                                             info["client_secret"], batch_size=200), http)
            await connector.open()
            gate = _Gate()
            stats = ScanStats(gate=gate)
            rows = 0
            async for batch in connector.scan(ScanRequest("accounts", ("id",)), stats):
                rows += batch.num_rows
            return stats, gate, rows

    stats, gate, rows = asyncio.run(run())
    assert rows == 240 and stats.pages == 2 and stats.api_calls == 2
    assert sandbox.salesforce is not None
    used = sandbox.salesforce.used
    assert (stats.rate_limit_limit, stats.rate_limit_remaining) == (15000, 15000 - used)
    assert (15000 - used, None) in gate.seen


@needs_shared
def test_describe_validates_against_the_contract_schema(sandbox: Sandbox) -> None:
    import jsonschema

    schema = json.loads((CONTRACT / "sobject-describe.schema.json").read_text())
    example = json.loads((CONTRACT / "describe.composed-example.json").read_text())["response"]
    for sobject in ("Account", "Opportunity", "Contact"):
        body = _get(sandbox, f"/services/data/v62.0/sobjects/{sobject}/describe").json()
        assert set(example) <= set(body)  # the REST shape, urls included
        # The plugin-schema JSON Schema comes from the CLI's type, which has no ``urls`` (the REST answer does).
        jsonschema.validate({k: v for k, v in body.items() if k != "urls"}, schema)


@needs_shared
def test_query_pages_errors_and_tokens_have_the_contract_shapes(sandbox: Sandbox) -> None:
    paged = json.loads((CONTRACT / "query-paginated.composed-example.json").read_text())
    errors = json.loads((CONTRACT / "errors.examples.json").read_text())
    tokens = json.loads((CONTRACT / "oauth-token.examples.json").read_text())
    first = _get(sandbox, "/services/data/v62.0/query", {"q": "SELECT Id, Name, CloseDate, LastModifiedDate, "
                                                               "Account.Name FROM Opportunity"}, batch=200)
    assert first.headers["content-type"] == paged["response_page1"]["headers"]["Content-Type"]
    assert re.fullmatch(r"api-usage=\d+/\d+", first.headers["sforce-limit-info"])
    body = first.json()
    assert set(body) == set(paged["response_page1"]["body"]) and body["done"] is False
    record, example = body["records"][0], paged["response_page1"]["body"]["records"][0]
    assert set(record["attributes"]) == set(example["attributes"]) and set(record["Account"]) == {"attributes", "Name"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", record["LastModifiedDate"])
    assert re.fullmatch(r"/services/data/v62\.0/query/\w+-200", body["nextRecordsUrl"])
    last = _get(sandbox, body["nextRecordsUrl"], batch=200).json()
    assert set(last) <= set(paged["response_page1"]["body"]) and last["totalSize"] == body["totalSize"]
    for soql, key in (("SELECT Idd FROM Account", "400_malformed_query"),
                      ("SELECT Id FORM Account", "400_malformed_query_syntax")):
        bad = _get(sandbox, "/services/data/v62.0/query", {"q": soql})
        assert bad.status_code == 400 and bad.json()[0]["errorCode"] == errors[key][0]["errorCode"]
        assert set(bad.json()[0]) == set(errors[key][0])
    expired = httpx.get(f"{sandbox.salesforce_url}/services/data/v62.0/query", params={"q": "SELECT Id FROM Account"},
                        headers={"Authorization": "Bearer 00Dexpired"})
    assert expired.status_code == 401 and expired.json() == errors["401_invalid_session"]
    assert httpx.get(f"{sandbox.salesforce_url}/services/data/v30.0/query", params={"q": "x"}).status_code == 410
    token = _token(sandbox)
    assert set(tokens["client_credentials"]["response"]) <= set(token)
    info = sandbox.info()["salesforce"]
    refused = httpx.post(f"{info['base_url']}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": "wrong", "client_id": info["client_id"]})
    assert refused.status_code == 400 and set(refused.json()) == set(errors["oauth_token_error"])


def _token(sandbox: Sandbox) -> dict[str, Any]:
    info = sandbox.info()["salesforce"]
    response = httpx.post(f"{info['base_url']}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": info["client_id"], "client_secret": info["client_secret"]})
    response.raise_for_status()
    return dict(response.json())


def _get(sandbox: Sandbox, path: str, params: dict[str, str] | None = None, batch: int | None = None
         ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {_token(sandbox)['access_token']}"}
    if batch:
        headers["Sforce-Query-Options"] = f"batchSize={batch}"
    return httpx.get(f"{sandbox.salesforce_url}{path}", params=params, headers=headers)


def test_refused_credentials_name_the_settings(sandbox: Sandbox) -> None:
    from core.errors import UpstreamError

    info = sandbox.info()["salesforce"]

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            await SalesforceConnector(SalesforceConfig(info["base_url"], info["client_id"], "wrong-secret"), http,
                                      name="crm").open()

    with pytest.raises(UpstreamError) as caught:
        asyncio.run(run())
    message = str(caught.value)
    assert "connectors.crm.client_id_env and connectors.crm.client_secret_env" in message
    assert "invalid_grant" in message and "wrong-secret" not in message
