"""Salesforce REST stand-in, faithful to ../shared/api-contracts/salesforce/CONTRACT.md.

``POST /services/oauth2/token`` (client_credentials, refresh_token), ``GET /services/data/`` (versions),
``/services/data/vNN.N/sobjects/{Name}/describe``, ``/query?q=`` (a real SOQL parser: sandbox/salesforce_soql.py) with
``Sforce-Query-Options: batchSize`` and ``nextRecordsUrl`` locators, ``Sforce-Limit-Info`` on every answer, error
bodies as JSON arrays (401 INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED, 400 MALFORMED_QUERY/INVALID_FIELD,
410 for retired versions, 414 for URLs longer than 16,384 bytes). ``POST /_sandbox/expire_tokens`` ends every
session so tests see a refresh; ``POST /_sandbox/faults`` injects latency and failures as for the other apps."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.common import Faults, RequestLog, control_routes
from sandbox.salesforce_describe import OBJECTS, describe
from sandbox.salesforce_seed import SfSeed
from sandbox.salesforce_soql import SoqlError, parse_soql, sort_rows

VERSIONS = tuple(f"{v}.0" for v in range(31, 69))
MAX_URL = 16_384
ORG_ID = "00DRO0000000001"


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class SalesforceStandIn:
    """State and handlers; ``app`` is the Starlette application."""

    def __init__(self, seed: SfSeed, client_id: str, client_secret: str, refresh_token: str,
                 daily_limit: int = 15_000) -> None:
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.daily_limit = daily_limit
        self.used = 0
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.lock = threading.Lock()
        self.log = RequestLog()
        self.faults = Faults()
        self.cursors: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.locators = itertools.count(1)
        self.schemas = {name: {f[0]: f[1] for f in fields} for name, fields in OBJECTS.items()}
        self.rows = self._rows(seed)
        self.app = Starlette(routes=[
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/data/", self.versions),
            Route("/services/data/v{version}/sobjects/{name}/describe", self.guard(self.describe)),
            Route("/services/data/v{version}/sobjects/{name}/describe/", self.guard(self.describe)),
            Route("/services/data/v{version}/query", self.guard(self.query)),
            Route("/services/data/v{version}/query/", self.guard(self.query)),
            Route("/services/data/v{version}/query/{locator}", self.guard(self.query_more)),
            Route("/_sandbox/expire_tokens", self.expire, methods=["POST"]),
            *control_routes(self.log, self.faults)])

    # -- data ----------------------------------------------------------------------------------------------
    @staticmethod
    def _rows(seed: SfSeed) -> dict[str, list[dict[str, Any]]]:
        accounts = [{"Id": a.id, "Name": a.name, "Type": a.type, "Industry": a.industry,
                     "AnnualRevenue": a.annual_revenue, "NumberOfEmployees": a.employees,
                     "BillingCountry": a.country, "BillingAddress": None if a.country is None else
                     {"country": a.country, "city": None, "street": None, "postalCode": None, "state": None},
                     "Rating": a.rating, "Website": a.website, "Tier__c": a.tier, "CreatedDate": a.created,
                     "LastModifiedDate": a.modified} for a in seed.accounts]
        by_id = {a["Id"]: a for a in accounts}

        def parent(account_id: str | None) -> dict[str, Any]:
            account = by_id.get(account_id or "")
            return {f"Account.{k}": (account[k] if account else None) for k in OBJECTS_FIELDS} | {
                "Account": account}

        opportunities = [{"Id": o.id, "Name": o.name, "AccountId": o.account_id, "StageName": o.stage,
                          "Amount": o.amount, "Probability": o.probability, "CloseDate": o.close_date,
                          "IsClosed": o.is_closed, "IsWon": o.is_won, "Type": o.type, "LeadSource": o.lead_source,
                          "CreatedDate": o.created, "LastModifiedDate": o.modified, **parent(o.account_id)}
                         for o in seed.opportunities]
        contacts = [{"Id": c.id, "AccountId": c.account_id, "FirstName": c.first_name, "LastName": c.last_name,
                     "Email": c.email, "Title": c.title, "Phone": c.phone, "MailingAddress": None,
                     "CreatedDate": c.created, "LastModifiedDate": c.modified, **parent(c.account_id)}
                    for c in seed.contacts]
        return {"Account": accounts, "Opportunity": opportunities, "Contact": contacts}

    # -- plumbing ------------------------------------------------------------------------------------------
    def guard(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            response = await self._check(request) or await handler(request)
            self.log.record(request, response.status_code)
            return response

        return endpoint

    async def _check(self, request: Request) -> Response | None:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        version = request.path_params.get("version", "")
        if version not in VERSIONS:
            gone = version.replace(".", "").isdigit() and float(version or 0) < 31
            return errors(410 if gone else 404, "NOT_FOUND", "The requested resource does not exist")
        if len(str(request.url)) > MAX_URL:
            return Response("URI Too Long", status_code=414, media_type="text/plain")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            valid = scheme.lower() == "bearer" and token in self.tokens
        if not valid:
            return errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else {}
            status = self.faults.fail_status
            code = "REQUEST_LIMIT_EXCEEDED" if status in (403, 429) else "SERVER_UNAVAILABLE"
            return errors(status, code, "TotalRequests Limit exceeded." if status in (403, 429)
                          else "Server unavailable or overloaded", headers)
        with self.lock:
            self.used += 1
            used = self.used
        if used > self.daily_limit:
            return errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", self._limit_header())
        return None

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={min(self.used, self.daily_limit)}/{self.daily_limit}"}

    def respond(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status_code=status, headers=self._limit_header(),
                        media_type="application/json;charset=UTF-8")

    # -- endpoints -----------------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        scheme, _, pair = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, client_secret = base64.b64decode(pair).decode().partition(":")
        grant = form.get("grant_type")
        ok = client_id == self.client_id and (
            (grant == "client_credentials" and client_secret == self.client_secret)
            or (grant == "refresh_token" and form.get("refresh_token") == self.refresh_token
                and client_secret in ("", self.client_secret)))
        self.log.record(request, 200 if ok else 400, {"grant_type": str(grant)})
        if grant not in ("client_credentials", "refresh_token"):
            return Response(json.dumps({"error": "unsupported_grant_type", "error_description": "grant type not "
                                        "supported"}), status_code=400, media_type="application/json")
        if not ok:
            return Response(json.dumps({"error": "invalid_grant", "error_description": "authentication failure"}),
                            status_code=400, media_type="application/json")
        access = f"{ORG_ID}!AQ{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens.add(access)
            self.tokens_issued += 1
        base = str(request.base_url).rstrip("/")
        return Response(json.dumps({
            "access_token": access, "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "token_format": "opaque", "instance_url": base, "id": f"{base}/id/{ORG_ID}/005RO000000001AAA",
            "token_type": "Bearer", "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
            "scope": "api"}), media_type="application/json")

    async def expire(self, request: Request) -> Response:
        with self.lock:
            self.tokens.clear()
        return Response(json.dumps({"expired": True}), media_type="application/json")

    async def versions(self, request: Request) -> Response:
        return Response(json.dumps([{"label": "Spring", "url": f"/services/data/v{v}", "version": v}
                                    for v in VERSIONS]), media_type="application/json")

    async def describe(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in OBJECTS:
            return errors(404, "NOT_FOUND", f"The requested resource does not exist ({name[:40]})")
        return self.respond(describe(name, request.path_params["version"]))

    async def query(self, request: Request) -> Response:
        soql = request.query_params.get("q", "")
        try:
            parsed = parse_soql(soql, self.schemas)
        except SoqlError as exc:
            return self.respond([{"message": str(exc), "errorCode": exc.code}], 400)
        rows = self.rows[parsed.sobject]
        hits = [r for r in rows if parsed.where is None or parsed.where(r)]
        if parsed.order:
            hits = sort_rows(hits, parsed.order)
        hits = hits[parsed.offset:]
        if parsed.limit is not None:
            hits = hits[:parsed.limit]
        if parsed.count:
            return self.respond({"totalSize": len(hits), "done": True, "records": []})
        version = request.path_params["version"]
        records = [self._record(parsed.sobject, version, r, parsed.fields) for r in hits]
        return self._page(request, records, 0)

    async def query_more(self, request: Request) -> Response:
        cursor, _, offset = request.path_params["locator"].rpartition("-")
        with self.lock:
            records = self.cursors.get(cursor)
        if records is None or not offset.isdigit():
            return self.respond([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}], 400)
        return self._page(request, records, int(offset), cursor)

    def _page(self, request: Request, records: list[dict[str, Any]], offset: int, cursor: str = "") -> Response:
        size = 2000
        option = request.headers.get("sforce-query-options", "")
        if option.startswith("batchSize=") and option[10:].isdigit():
            size = min(max(int(option[10:]), 200), 2000)
        body: dict[str, Any] = {"totalSize": len(records), "done": offset + size >= len(records),
                                "records": records[offset:offset + size]}
        if not body["done"]:
            if not cursor:
                cursor = f"01gRO{next(self.locators):010d}"
                with self.lock:
                    self.cursors[cursor] = records
                    while len(self.cursors) > 500:
                        self.cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/v{request.path_params['version']}/query/{cursor}-" \
                                     f"{offset + size}"
        return self.respond(body)

    def _record(self, sobject: str, version: str, row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject,
                                              "url": f"/services/data/v{version}/sobjects/{sobject}/{row['Id']}"}}
        for name in fields:
            if name.startswith("Account."):
                account = row.get("Account")
                if account is None:
                    out["Account"] = None
                    continue
                nested = out.get("Account") or {"attributes": {
                    "type": "Account", "url": f"/services/data/v{version}/sobjects/Account/{account['Id']}"}}
                nested[name[8:]] = _wire(account[name[8:]])
                out["Account"] = nested
            else:
                out[name] = _wire(row[name])
        return out


OBJECTS_FIELDS = tuple(f[0] for f in OBJECTS["Account"])


def errors(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Salesforce's error body: a JSON array of ``{message, errorCode}``."""
    return Response(json.dumps([{"message": message, "errorCode": code}]), status_code=status, headers=headers,
                    media_type="application/json;charset=UTF-8")
