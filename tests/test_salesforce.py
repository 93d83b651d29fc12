"""Salesforce end to end: ADBC → OmniSQL → the connector → the stand-in over real HTTP.

Answers are compared with DuckDB over the seed (``tests.salesforce_oracle``), never with the engine itself. The
stand-in's request log shows what was sent: only the needed fields, pages followed by ``nextRecordsUrl``, hostile
values that stay inside their literal, bind joins as ``Id IN (...)`` split to fit the URL, and the failures the
connector rides out (expired session, 429 + Retry-After, 5xx) or reports (timeout)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import duckdb
import httpx
import pytest

from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.oracle import oracle_answer
from tests.salesforce_oracle import connect_salesforce_oracle
from tests.salesforce_service import SMALL_URL, SalesforceService, salesforce_service

STORY = ("SELECT a.name AS customer, o.name AS opportunity, o.close_date, ji.issue_key, ji.summary "
         "FROM salesforce.opportunities o JOIN salesforce.accounts a ON o.account_id = a.id "
         "JOIN jira.issues ji ON ji.customer = a.name "
         "WHERE o.close_date BETWEEN DATE '2026-10-01' AND DATE '2026-12-31' AND o.is_closed = false "
         "AND ji.status <> 'Done' AND list_contains(ji.labels, 'bug') ORDER BY customer, ji.issue_key, opportunity")

QUERIES = [
    "SELECT * FROM salesforce.accounts",
    "SELECT * FROM salesforce.opportunities",
    "SELECT * FROM salesforce.contacts",
    "SELECT id, name FROM salesforce.accounts WHERE name = 'acme corp'",  # SOQL matches it, SQL does not
    "SELECT id, name FROM salesforce.accounts WHERE name IN ('Globex', 'Hooli', 'HOOLI', 'nope')",
    "SELECT name FROM salesforce.accounts WHERE name LIKE 'O''Rei%'",
    "SELECT name FROM salesforce.accounts WHERE name LIKE '50%'",
    "SELECT name, tier__c FROM salesforce.accounts WHERE tier__c IS NULL",
    "SELECT name, rating FROM salesforce.accounts WHERE rating <> 'Hot'",
    "SELECT id, amount FROM salesforce.opportunities WHERE amount <> 5000",
    "SELECT id, amount FROM salesforce.opportunities WHERE amount > 500000 AND amount <= 900000",
    "SELECT id FROM salesforce.opportunities WHERE amount BETWEEN 1000 AND 20000.5",
    "SELECT id FROM salesforce.opportunities WHERE amount IS NULL",
    "SELECT id, probability FROM salesforce.opportunities WHERE probability IN (10, 20)",
    "SELECT id FROM salesforce.opportunities WHERE close_date >= DATE '2026-10-01' AND close_date < '2027-01-01'",
    "SELECT id, is_won FROM salesforce.opportunities WHERE is_closed = false AND is_won <> true",
    "SELECT id FROM salesforce.opportunities WHERE created_date >= TIMESTAMP '2025-08-01 12:30:00.5'",
    "SELECT id FROM salesforce.contacts WHERE account_id = '001RO0000000007AAA'",
    "SELECT id, last_name FROM salesforce.contacts WHERE account_id IS NULL",
    "SELECT id, created_date FROM salesforce.contacts ORDER BY created_date DESC LIMIT 5",
    "SELECT id, close_date FROM salesforce.opportunities WHERE amount > 100000 ORDER BY close_date, id LIMIT 7",
    "SELECT stage_name, count(*) AS n, sum(amount) AS total FROM salesforce.opportunities GROUP BY stage_name",
    "SELECT count(*) AS n FROM (SELECT id FROM salesforce.opportunities WHERE amount > 1000 LIMIT 10)",
    "SELECT a.name, count(*) AS contacts FROM salesforce.contacts c JOIN salesforce.accounts a "
    "ON c.account_id = a.id WHERE a.tier__c = 'Gold' GROUP BY a.name",
    "SELECT o.id, a.name FROM salesforce.opportunities o JOIN salesforce.accounts a ON o.account_id = a.id "
    "WHERE o.stage_name = 'Closed Won' AND o.close_date BETWEEN DATE '2026-07-01' AND DATE '2026-09-30'",
    STORY,
]
HOSTILE = ["x' OR Name LIKE '%", "\\' OR Id != null OR Name = '", "O'Reilly Media", "a\\", "back\\slash",
           "new\nline", "tab\there", "50% Discount Stores", "Under_Score Labs", "'; DELETE FROM Account --",
           "ünïcødé ☃", "\\u0027", "%", "_"]


@pytest.fixture(scope="module")
def sf() -> Iterator[SalesforceService]:
    with salesforce_service() as service:
        yield service


@pytest.fixture(scope="module")
def conn(sf: SalesforceService) -> Iterator[Any]:
    connection = flightsql.connect(sf.uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {sf.token}"})
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_salesforce_oracle("salesforce", "sf_refresh")
    yield db
    db.close()


@pytest.fixture()
def log(sf: SalesforceService) -> SalesforceService:
    sf.clear()
    sf.faults()
    return sf


def statuses(log: SalesforceService) -> list[int]:
    """Statuses of the data requests (a session another test expired shows as one 401 first: left out)."""
    return [e["status"] for e in log.requests() if e["status"] != 401 and not e["path"].endswith("/token")]


def explain(conn: Any, sql: str) -> list[dict[str, Any]]:
    return list(adbc_answer(conn, f"EXPLAIN {sql}").to_pylist())


@pytest.mark.parametrize("sql", QUERIES)
def test_answers_equal_the_oracle(sql: str, conn: Any, oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)


def test_listing_pages_by_next_records_url_and_selects_only_needed_fields(conn: Any, log: SalesforceService
                                                                           ) -> None:
    assert adbc_answer(conn, "SELECT name, amount FROM salesforce.opportunities").num_rows == 900
    assert log.queries() == ["SELECT Name, Amount FROM Opportunity"]
    more = [e["path"] for e in log.requests() if re.fullmatch(r"/services/data/v62\.0/query/01g\w+-\d+", e["path"])]
    assert [int(p.rsplit("-", 1)[1]) for p in more] == [200, 400, 600, 800], "5 pages of 200"


def test_pushdown_is_soql_and_limit_goes_down_only_when_exact(conn: Any, log: SalesforceService) -> None:
    adbc_answer(conn, "SELECT id FROM salesforce.opportunities WHERE amount > 1000 AND close_date >= "
                      "DATE '2026-10-01' AND is_won = false LIMIT 3")
    adbc_answer(conn, "SELECT id FROM salesforce.accounts WHERE name = 'Globex' LIMIT 3")
    adbc_answer(conn, "SELECT id FROM salesforce.contacts ORDER BY created_date DESC LIMIT 2")
    assert log.queries() == [
        "SELECT Id, Amount, CloseDate, IsWon FROM Opportunity WHERE Amount > 1000.0 AND CloseDate >= 2026-10-01 "
        "AND IsWon = false LIMIT 3",
        "SELECT Id, Name FROM Account WHERE Name = 'Globex'",  # case-insensitive in SOQL: re-checked, no LIMIT
        "SELECT Id, CreatedDate FROM Contact ORDER BY CreatedDate DESC"]  # top-N: stops after the first page
    assert len(log.requests()) == 3


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_inside_their_literal(value: str, conn: Any, log: SalesforceService,
                                                  oracle: duckdb.DuckDBPyConnection) -> None:
    from sandbox.salesforce_soql import tokenize

    for sql, template in (("SELECT id, name FROM salesforce.accounts WHERE name = ?",
                           "SELECT Id, Name FROM Account WHERE Name = ?"),
                          ("SELECT id, name FROM salesforce.accounts WHERE name IN ('Globex', ?)",
                           "SELECT Id, Name FROM Account WHERE Name IN (?, ?)"),
                          ("SELECT id, name FROM salesforce.accounts WHERE name LIKE ? || '%'",
                           None)):  # a computed pattern is not pushed: it must not reach SOQL at all
        log.clear()
        got = adbc_answer(conn, sql, (value,))
        expected = oracle_answer(oracle, sql.replace("?", "$1"), (value,))
        assert_same_answer(got, expected, False, context=f"{sql} with {value!r}")
        (soql,) = log.queries()
        shape = re.sub(r"'(?:[^'\\]|\\.)*'", "?", soql)
        assert shape == (template or "SELECT Id, Name FROM Account"), soql
        strings = [t.value[0] for t in tokenize(soql) if t.kind == "string"]
        assert template is None or value in strings  # the value, whole, as one literal


def test_an_expired_session_is_refreshed_once(conn: Any, log: SalesforceService) -> None:
    issued = log.standin.tokens_issued
    httpx.post(f"{log.sandbox.salesforce_url}/_sandbox/expire_tokens").raise_for_status()
    assert adbc_answer(conn, "SELECT count(*) AS n FROM salesforce.accounts").column(0)[0].as_py() == 240
    seen = [(e["path"].rsplit("/", 1)[-1], e["status"]) for e in log.requests()]
    assert seen[:3] == [("query", 401), ("token", 200), ("query", 200)], seen
    assert log.standin.tokens_issued == issued + 1


def test_the_refresh_token_flow_gets_a_session(conn: Any, log: SalesforceService) -> None:
    httpx.post(f"{log.sandbox.salesforce_url}/_sandbox/expire_tokens").raise_for_status()
    assert adbc_answer(conn, "SELECT count(*) FROM sf_refresh.contacts").column(0)[0].as_py() == 520
    grants = [e["body"]["grant_type"] for e in log.requests() if e["path"].endswith("/token")]
    assert grants == ["refresh_token"]


def test_429_with_retry_after_is_waited_out(conn: Any, log: SalesforceService) -> None:
    log.faults(fail_next=1, fail_status=429, retry_after="1")
    started = time.monotonic()
    assert adbc_answer(conn, "SELECT count(*) FROM salesforce.accounts").column(0)[0].as_py() == 240
    assert time.monotonic() - started >= 0.9
    assert statuses(log)[:2] == [429, 200]


def test_5xx_is_retried(conn: Any, log: SalesforceService) -> None:
    log.faults(fail_next=2, fail_status=503)
    assert adbc_answer(conn, "SELECT count(*) FROM salesforce.accounts").column(0)[0].as_py() == 240
    assert statuses(log)[:3] == [503, 503, 200]


def test_a_slow_answer_is_a_source_timeout(conn: Any, log: SalesforceService) -> None:
    log.faults(latency_s=3.0)
    try:
        with pytest.raises(Exception, match="SOURCE_TIMEOUT") as caught:
            adbc_answer(conn, "SELECT count(*) FROM salesforce.contacts")
        assert "Salesforce did not answer" in str(caught.value)
    finally:
        log.faults()
    time.sleep(1.6)  # the stand-in finishes the slow request before the next test counts its log


def test_bind_join_sends_id_in_batches(conn: Any, log: SalesforceService) -> None:
    sql = QUERIES[-2]
    steps = explain(conn, sql)
    bound = next(s for s in steps if s["source_table"] == "salesforce.accounts")
    assert bound["strategy"] == "bind join" and bound["binding"].startswith("id IN (keys of [0] o.account_id)")
    log.clear()
    adbc_answer(conn, sql)
    accounts = [q for q in log.queries() if "FROM Account" in q]
    assert len(accounts) == 1 and re.fullmatch(r"SELECT Id, Name FROM Account WHERE Id IN \('001\w{15}'"
                                               r"(, '001\w{15}')*\)", accounts[0]), accounts


def test_in_lists_are_split_to_fit_the_url(conn: Any, log: SalesforceService,
                                          oracle: duckdb.DuckDBPyConnection) -> None:
    ids = ", ".join(f"'001RO{n:010d}AAA'" for n in range(1, 121))
    sql = f"SELECT id, name FROM sf_refresh.accounts WHERE id IN ({ids})"
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), False)
    sent = [e for e in log.requests() if "q" in e["query"]]
    assert len(sent) >= 3
    for entry in sent:
        url = httpx.URL(f"{log.sandbox.salesforce_url}{entry['path']}", params=entry["query"])
        assert len(str(url)) <= SMALL_URL
    listed = {m for e in sent for m in re.findall(r"001RO\d{10}AAA", e["query"]["q"])}
    assert len(listed) == 120


def test_cross_app_bind_join_salesforce_to_jira(conn: Any, log: SalesforceService,
                                                oracle: duckdb.DuckDBPyConnection) -> None:
    sql = ("SELECT a.name, ji.issue_key, ji.status FROM salesforce.accounts a JOIN jira.issues ji "
           "ON ji.customer = a.name WHERE a.name IN ('Globex', 'O''Reilly Media') AND ji.status <> 'Done'")
    steps = explain(conn, sql)
    jira = next(s for s in steps if s["source_table"] == "jira.issues")
    assert jira["strategy"] == "bind join" and jira["binding"].startswith("customer IN (keys of [0] a.name)")
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), False, context=sql)


def test_the_risk_story_explains_its_plan(conn: Any) -> None:
    steps = explain(conn, STORY)
    by_table = {s["source_table"]: s for s in steps}
    assert "close_date BETWEEN" in by_table["salesforce.opportunities"]["pushed_exact"]
    assert "is_closed = False" in by_table["salesforce.opportunities"]["pushed_exact"]
    assert by_table["salesforce.accounts"]["strategy"] == "bind join"
