"""The ``omnisql`` CLI against the running demo, as a user would type it: through pipes (every output format, row
counts equal to ``count(*)``) and through a pseudo-terminal (progress on stderr, Ctrl-C cancelling on the server)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pyarrow as pa
import pytest

from clients.cli import HelpFormatter, build_parser, cmd_serve, listen_overrides
from sandbox.seed import build_seed
from tests.conftest import ROOT, SandboxLog, launch_demo


def omnisql(demo: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clients.cli", *args, "--uri", demo["flight_uri"], "--token",
                           demo["tokens"]["token_admin"]], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_query_prints_an_aligned_table_once(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT count(*) AS n FROM jira.issues")
    assert done.returncode == 0, done.stderr
    n = str(len(build_seed().issues))  # 1000: the column is as wide as the widest value
    assert done.stdout.splitlines() == ["n", "-" * len(n), n, "(1 row)"]  # no trailing blanks


def test_the_table_aligns_wide_characters_and_escapes_control_characters(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT * FROM (VALUES ('日本語', 'x', NULL), "
                   "('abc', 'a' || chr(27) || '[31mred', 'e' || chr(769)), "
                   "('e', 'tab' || chr(9) || 'x' || chr(10) || 'y', repeat('é', 70))) t(u, v, w)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "u      | v            | w",
        "-------+--------------+-" + "-" * 60,
        "日本語 | x            | NULL",  # CJK takes two columns a character, the combining accent none
        "abc    | a\\x1b[31mred | e\u0301",  # an escape sequence in a value cannot colour the terminal
        "e      | tab\\tx\\ny    | " + "é" * 59 + "…",  # cut at 60 columns
        "(3 rows)"]


def test_the_table_shows_values_as_sql_does_not_as_python(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT true AS t, NULL::BOOLEAN AS n, ['bug', 'ux'] AS l, {'a': 1} AS s, "
                   "'ab'::BLOB AS b")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2] == 'true | NULL | ["bug", "ux"] | {"a": 1} | \\x6162'  # not True, ['bug', 'ux']


def test_a_terminal_that_is_not_utf8_gets_question_marks_not_a_traceback(demo: dict[str, Any]) -> None:
    sql = "SELECT '日本語 ✓' AS u, 'é' AS e"
    for encoding in ("ascii", "latin-1"):
        env = {**os.environ, "PYTHONIOENCODING": encoding}
        args = [sys.executable, "-m", "clients.cli", "--uri", demo["flight_uri"], "--token",
                demo["tokens"]["token_admin"]]
        table = subprocess.run([*args[:3], "query", sql, *args[3:]], cwd=ROOT, capture_output=True, env=env,
                               timeout=60)
        assert table.returncode == 0 and b"Traceback" not in table.stderr, table.stderr
        e = "é".encode(encoding, "replace").decode(encoding)
        assert table.stdout.decode(encoding).splitlines()[:3] == ["u     | e", "------+--", f"??? ? | {e}"]
        as_json = subprocess.run([*args[:3], "query", "--format", "json", sql, *args[3:]], cwd=ROOT,
                                 capture_output=True, env=env, timeout=60)
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout) == [{"u": "日本語 ✓", "e": "é"}]  # escaped, nothing lost


def test_explain_prints_one_block_per_step(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "explain", "SELECT gh.number FROM github.pull_requests gh JOIN jira.issues ji "
                   "ON gh.branch = ji.branch_name WHERE gh.repo = 'infra-tools' AND gh.status = 'open'")
    assert done.returncode == 0, done.stderr
    assert "strategy: bind join" in done.stdout and "binding: branch_name IN (keys of [0] gh.branch)" in done.stdout


def test_bad_sql_is_an_error_on_stderr(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT nope FROM jira.issues")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: INVALID_QUERY: Column 'nope' could not be resolved")


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"omnisql serve: cannot listen on 127.0.0.1:{port}: is the port taken?" in done.stderr
    # one sentence: no gRPC core log line (E1123 ... add_port.cc) and no advice about gRPC's own logging
    assert "add_port" not in done.stderr and "GRPC_VERBOSITY" not in done.stderr, done.stderr


def test_the_installed_script_runs_the_sandbox_from_the_checkout(tmp_path: Path) -> None:
    """``.venv/bin/omnisql`` (an editable install) from any directory: the checkout it runs from has ``demo/`` and
    ``sandbox/``, so ``omnisql sandbox`` and ``omnisql serve --demo`` work as the README writes them."""
    script = Path(sys.executable).parent / "omnisql"
    info = tmp_path / "sandbox.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([str(script), "sandbox", "--info-file", str(info), "--faults", "jira:latency_ms=1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert info.exists(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "no info file"
        assert json.loads(info.read_text())["faults"] == {"jira": {"latency_s": 0.001}}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- formats through pipes: every row, or a note on stderr --------------------------------------------------------
def count_star(demo: dict[str, Any], table: str) -> int:
    done = omnisql(demo, "query", "--format", "json", f"SELECT count(*) AS n FROM {table}")
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)[0]["n"])


def rows_of(fmt: str, done: subprocess.CompletedProcess[bytes]) -> int:
    if fmt == "arrow":
        return pa.ipc.open_stream(io.BytesIO(done.stdout)).read_all().num_rows
    text = done.stdout.decode()
    if fmt == "json":
        return len(json.loads(text))
    if fmt == "csv":
        return len(list(csv.reader(io.StringIO(text)))) - 1  # the header
    match = re.search(r"^\((\d+) rows?(, \d+ not shown)?\)$", text, re.MULTILINE)
    assert match, text[-300:]
    return len(text.splitlines()) - 3  # header, rule, footer


def piped(demo: dict[str, Any], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "clients.cli", *args, "--uri", demo["flight_uri"], "--token",
                           demo["tokens"]["token_admin"]], cwd=ROOT, capture_output=True, timeout=120)


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "arrow"])
@pytest.mark.parametrize("table", ["github.pull_requests", "jira.issues"])
def test_every_format_prints_every_row(demo: dict[str, Any], fmt: str, table: str) -> None:
    """Through pipes (no terminal): the row count equals count(*); no progress line on a non-terminal stderr."""
    expected = count_star(demo, table)
    args = ["--max-rows", "all"] if fmt == "table" else []
    done = piped(demo, "query", "--format", fmt, *args, f"SELECT * FROM {table}")
    assert done.returncode == 0, done.stderr
    assert rows_of(fmt, done) == expected > 50
    assert done.stderr == b""  # nothing left out, and no progress drawn into a pipe


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "arrow"])
def test_a_cut_result_says_so_on_stderr(demo: dict[str, Any], fmt: str) -> None:
    expected = count_star(demo, "jira.issues")
    done = piped(demo, "query", "--format", fmt, "--max-rows", "7", "SELECT * FROM jira.issues")
    assert done.returncode == 0, done.stderr
    assert rows_of(fmt, done) == 7
    assert done.stderr.decode().strip() == (f"omnisql: showing 7 of {expected} rows (--max-rows 7); pass "
                                            "`--max-rows all` to see them all")


def test_only_the_table_format_is_bounded_by_default(demo: dict[str, Any]) -> None:
    expected = count_star(demo, "github.pull_requests")
    table = piped(demo, "query", "SELECT number FROM github.pull_requests")
    assert rows_of("table", table) == 50 and f"({expected} rows, {expected - 50} not shown)" in table.stdout.decode()
    assert b"showing 50 of" in table.stderr
    assert rows_of("json", piped(demo, "query", "--format", "json", "SELECT number FROM github.pull_requests")) \
        == expected


def test_duplicate_names_and_types_in_json_and_csv(demo: dict[str, Any]) -> None:
    sql = ("SELECT gh.status, ji.status, gh.merged_at, ji.labels FROM github.pull_requests gh "
           "JOIN jira.issues ji ON gh.branch = ji.branch_name ORDER BY gh.repo, gh.number, ji.issue_key LIMIT 3")
    rows = json.loads(piped(demo, "query", "--format", "json", sql).stdout)
    assert list(rows[0]) == ["status", "status_2", "merged_at", "labels"] and isinstance(rows[0]["labels"], list)
    lines = list(csv.reader(io.StringIO(piped(demo, "query", "--format", "csv", sql).stdout.decode())))
    assert lines[0] == ["status", "status", "merged_at", "labels"] and len(lines) == 4
    assert json.loads(lines[1][3]) == rows[0]["labels"]


def test_arrow_is_refused_on_a_terminal(demo: dict[str, Any]) -> None:
    child = spawn(demo, "query", "--format", "arrow", "SELECT 1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2 and "redirect it to a file or pipe it" in child.before


# -- a terminal: progress, Ctrl-C ---------------------------------------------------------------------------------
def spawn(demo: dict[str, Any], *args: str, columns: int = 200) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "clients.cli", *args, "--uri", demo["flight_uri"], "--token",
                                          demo["tokens"]["token_admin"]], cwd=str(ROOT), encoding="utf-8",
                         timeout=60, dimensions=(40, columns))


@pytest.fixture()
def slow_jira(sandbox_log: SandboxLog) -> Iterator[None]:
    """Every Jira request of the sandbox answers after 1.5 s (a query of a few pages takes seconds)."""
    with sandbox_log.slowed("jira", 1.5):
        yield


def last_logged(demo: dict[str, Any]) -> dict[str, Any]:
    done = omnisql(demo, "query", "--format", "json", "SELECT outcome, error_code, total_ms FROM omnisql.query_log "
                   "ORDER BY started_at DESC LIMIT 1")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)[0])


def test_the_progress_line_fits_a_narrow_terminal(demo: dict[str, Any], slow_jira: None) -> None:
    child = spawn(demo, "query", "SELECT count(*) FROM jira.issues WHERE status <> 'Done'", columns=40)
    child.expect(pexpect.EOF)
    child.close()
    drawn = [part for part in child.before.split("\r\x1b[K") if part.startswith("omnisql: ")]
    assert drawn and all(len(part) <= 39 for part in drawn), drawn  # cut with … rather than wrapped
    assert all(part.endswith("…") for part in drawn if len(part) == 39)


def test_ctrl_c_cancels_the_query_on_the_server(demo: dict[str, Any], slow_jira: None) -> None:
    child = spawn(demo, "query", "SELECT count(*) FROM jira.issues WHERE status <> 'Done'")
    child.expect(r"omnisql: running \d+\.\d s · plan: ~\d+ API calls? · Ctrl-C cancels")
    started = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    assert "omnisql: cancelled; the server stops the query" in child.before and "Traceback" not in child.before
    assert time.monotonic() - started < 5
    logged = last_logged(demo)  # the server saw the cancel and stopped: the query is logged as CANCELLED
    assert logged["outcome"] == "CANCELLED" and logged["error_code"] == "CANCELLED", logged


def test_progress_is_drawn_on_a_terminal_and_cleared_before_the_result(demo: dict[str, Any], slow_jira: None) -> None:
    child = spawn(demo, "query", "SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    output = child.before
    frames = re.findall(r"omnisql: running (\d+\.\d) s · plan: ~(\d+) API calls?", output)
    assert len(frames) >= 5 and float(frames[-1][0]) >= 1.0  # redrawn as time goes by
    assert int(frames[0][1]) > 0  # the plan's estimate
    tail = output.rsplit("\r\x1b[K", 1)[1]  # the line is erased, then the result is printed
    assert tail.replace("\r\n", "\n").startswith("n  \n---\n") or tail.lstrip().startswith("n"), tail
    assert "(1 row)" in tail and "omnisql: running" not in tail


def test_progress_counts_the_api_calls_so_far_per_source(demo: dict[str, Any], slow_jira: None) -> None:
    """The server reports a running query's API calls per connector (flight_server/progress.py): the line shows
    them as the pages come, before the query ends."""
    child = spawn(demo, "query", "SELECT count(*) FROM jira.issues WHERE status <> 'Done'")
    child.expect(r"omnisql: running \d+\.\d s · plan: ~\d+ API calls? · so far: jira ([2-9]|\d\d) · Ctrl-C cancels")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before


def test_no_progress_when_stderr_is_not_a_terminal(demo: dict[str, Any], slow_jira: None) -> None:
    done = piped(demo, "query", "SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'")
    assert done.returncode == 0 and done.stderr == b"" and b"(1 row)" in done.stdout


# -- errors a person can act on ---------------------------------------------------------------------------------
def test_a_missing_token_says_how_to_give_one(demo: dict[str, Any]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMNISQL_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT 1", "--uri", demo["flight_uri"]],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == "omnisql query: no token: pass `--token` or set `OMNISQL_TOKEN`"


def test_a_wrong_token_names_only_options_that_exist(demo: dict[str, Any]) -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT 1", "--uri", demo["flight_uri"],
                           "--token", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: UNAUTHENTICATED: the bearer token is not valid; pass `--token` or set "
                                  "`OMNISQL_TOKEN`")
    assert "username" not in done.stderr and "password" not in done.stderr


def test_a_syntax_error_has_a_caret_and_no_parser_internals(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT repo,\n  count(*) FROM github.pull_requests GROUP BY repo ORDER BY")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: INVALID_QUERY: SQL syntax error at line 2, column 52 near 'ORDER BY': something is missing after "
        "ORDER BY",
        "  2 |   count(*) FROM github.pull_requests GROUP BY repo ORDER BY",
        "    |                                                    ^^^^^^^^"]
    assert "<class" not in done.stderr and "sqlglot" not in done.stderr


def test_an_unknown_column_has_a_caret(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT summary,\n  nope FROM jira.issues")
    assert done.returncode == 1
    assert done.stderr.splitlines()[1:] == ["  2 |   nope FROM jira.issues", "    |   ^^^^"]
    assert "`omnisql describe TABLE`" in done.stderr


def test_a_failing_query_has_no_grpc_debug_context(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT CAST(title AS INTEGER) FROM github.pull_requests")
    assert done.returncode == 1
    assert done.stderr.count("Could not convert string") == 1, done.stderr
    assert "debug context" not in done.stderr and "<table>" not in done.stderr and "Client context" not in done.stderr


def test_an_unreachable_server_is_said_plainly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT 1", "--uri",
                           f"grpc://127.0.0.1:{port}", "--token", "t"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach an OmniSQL server at grpc://127.0.0.1:{port} ")
    assert "pass `--uri` (or set `OMNISQL_URI`)" in done.stderr


def test_a_server_that_stops_mid_query_is_said_plainly(tmp_path: Path) -> None:
    with launch_demo(tmp_path) as info:
        httpx.post(f"{info['sandbox']['jira']['base_url']}/_sandbox/faults", json={"latency_s": 10}, timeout=10)
        query = subprocess.Popen([sys.executable, "-m", "clients.cli", "query", "SELECT count(*) FROM jira.issues",
                                  "--uri", info["flight_uri"], "--token", info["tokens"]["token_admin"]], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        os.kill(info["pid"], signal.SIGTERM)
        out, err = query.communicate(timeout=60)
    assert query.returncode == 1 and out == ""
    assert err.startswith(f"error: the server at {info['flight_uri']} closed the connection while the query ran"), err
    assert err.rstrip().endswith("it was stopped or restarted; run the query again once it is back"), err


def test_the_sql_may_come_from_stdin(demo: dict[str, Any]) -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "-", "--format", "csv", "--uri",
                           demo["flight_uri"], "--token", demo["tokens"]["token_admin"]], cwd=ROOT,
                          input="-- the team's count\nSELECT count(*) AS n\nFROM jira.issues\nWHERE team = 'web';\n",
                          capture_output=True, text=True, timeout=60)
    inline = omnisql(demo, "query", "--format", "csv", "SELECT count(*) AS n FROM jira.issues WHERE team = 'web'")
    assert done.returncode == 0 and done.stdout == inline.stdout and done.stdout.startswith("n\n"), done.stderr


def test_a_spent_budget_names_the_cli_flags_that_help(tmp_path: Path) -> None:
    with launch_demo(tmp_path, "--rate-limit-burst", "1", "--rate-limit-refill-per-s", "0.001",
                     "--rate-limit-max-wait-ms", "0", throttled=True) as info:
        def query() -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT count(*) FROM jira.projects",
                                   "--uri", info["flight_uri"], "--token", info["tokens"]["token_admin"]], cwd=ROOT,
                                  capture_output=True, text=True, timeout=60)

        assert query().returncode == 0  # the one token; its rows stay cached
        done = query()
    assert done.returncode == 1 and done.stderr.startswith("error: RATE_LIMIT_EXHAUSTED: "), done.stderr
    assert "accept cached data with a larger `--max-staleness-ms`" in done.stderr, done.stderr
    assert "cached: pass `--allow-stale` to accept it" in done.stderr, done.stderr


def test_wrong_addresses_are_said_as_what_to_do(demo: dict[str, Any]) -> None:
    port = demo["flight_uri"].rsplit(":", 1)[1]
    http_port = demo["http_url"].rsplit(":", 1)[1].rstrip("/")
    expected = {
        f"grpc+tls://127.0.0.1:{port}": f"error: cannot connect to grpc+tls://127.0.0.1:{port} over TLS: the server "
                                        f"there does not speak TLS; use grpc://127.0.0.1:{port}",
        f"grpc://127.0.0.1:{http_port}": f"error: grpc://127.0.0.1:{http_port} answers HTTP/1.1, not gRPC: that is an "
                                         "HTTP port",
        "grpc://nosuchhost.invalid:8815": "error: cannot find the host of grpc://nosuchhost.invalid:8815 ",
    }
    for uri, start in expected.items():
        done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT 1", "--uri", uri, "--token", "t"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr.startswith(start), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr  # no gRPC core log line (I1123 ... ssl_transport)


@pytest.mark.parametrize(("sql", "meant"), [("SELECT * FROM jira.isues", "jira.issues"),
                                            ("SELECT * FROM jria.issues", "jira.issues or linear.issues"),
                                            ("SELECT * FROM issues", "github.issues, jira.issues or linear.issues"),
                                            ("SELECT count(*) FROM pull_request", "github.pull_requests")])
def test_a_mistyped_table_says_did_you_mean(demo: dict[str, Any], sql: str, meant: str) -> None:
    done = omnisql(demo, "query", sql)
    assert done.returncode == 1
    assert f"; did you mean {meant}? " in done.stderr.splitlines()[0], done.stderr


@pytest.mark.parametrize(("sql", "hint"), [("SELEC 1", "(is SELEC a misspelt SELECT?)"),
                                            ("SELECT * FORM jira.issues", "(is FORM a misspelt FROM?)"),
                                            ("SELECT count(*) FROM jira.issues GROPU BY team",
                                             "(is GROPU a misspelt GROUP?)"),
                                            ("SELECT issue_key FROM jira.issues ji ji2", None)])
def test_a_misspelt_keyword_is_named(demo: dict[str, Any], sql: str, hint: str | None) -> None:
    done = omnisql(demo, "query", sql)
    first = done.stderr.splitlines()[0]
    assert done.returncode == 1 and first.startswith("error: INVALID_QUERY: SQL syntax error at line 1"), done.stderr
    assert first.endswith(hint) if hint else "misspelt" not in first, done.stderr


def test_a_mistyped_column_says_did_you_mean_with_a_caret(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT isue_key FROM jira.issues")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].endswith("(did you mean issue_key?)"), done.stderr
    # a qualified reference: the server words it without a position; the caret is found in the SQL
    done = omnisql(demo, "query", "SELECT ji.summary\nFROM jira.issues ji WHERE ji.stauts = 'Done'")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: INVALID_QUERY: Unknown column: stauts; check the column names with `omnisql describe TABLE` (did you "
        "mean status?)",
        "  2 | FROM jira.issues ji WHERE ji.stauts = 'Done'",
        "    |                              ^^^^^^"], done.stderr
    done = omnisql(demo, "query", "SELECT zzz FROM jira.issues")  # nothing close: no guess
    assert done.returncode == 1 and "did you mean" not in done.stderr


def test_describe_shows_the_system_tables_too(demo: dict[str, Any]) -> None:
    """Queryable by every principal but not listed by GetTables: describe still answers for them."""
    done = omnisql(demo, "describe", "omnisql.query_log", "--format", "json")
    assert done.returncode == 0, done.stderr
    columns = {c["column"]: c["type"] for c in json.loads(done.stdout)}
    assert columns["trace_id"] == "VARCHAR" and columns["started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert omnisql(demo, "describe", "information_schema.columns").returncode == 0
    assert omnisql(demo, "describe", "omnisql.nope").returncode == 1


def test_describe_and_tables_say_did_you_mean(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "describe", "jira.isues")
    assert done.returncode == 1
    assert done.stderr.strip() == ("omnisql describe: no table jira.isues that this token may read; did you mean "
                                   "jira.issues? `omnisql tables` lists them")
    done = omnisql(demo, "describe", "GitHub.Users")  # as case-insensitive as SQL's FROM GitHub.Users
    assert done.returncode == 0 and done.stdout.splitlines()[2].startswith("login "), done.stderr
    done = omnisql(demo, "tables", "--schema", "JIRA")
    assert done.returncode == 0 and "(2 rows)" in done.stdout, done.stderr
    done = omnisql(demo, "tables", "--schema", "jria")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("omnisql tables: no schema jria that this token may read; did you mean jira? "
                                  "schemas: github, "), done.stderr


# -- schema discovery ---------------------------------------------------------------------------------------------
def test_tables_lists_what_the_token_may_read(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "tables", "--format", "json")
    assert done.returncode == 0, done.stderr
    listed = {(t["schema"], t["table"]): t["columns"] for t in json.loads(done.stdout)}
    assert {("github", "pull_requests"), ("github", "users"), ("jira", "issues")} <= set(listed)
    assert all(n > 3 for n in listed.values())
    jira_only = json.loads(omnisql(demo, "tables", "--schema", "jira", "--format", "json").stdout)
    assert [t["table"] for t in jira_only] == ["issues", "projects"]


def test_describe_shows_columns_and_sql_types(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "describe", "jira.issues", "--format", "json")
    assert done.returncode == 0, done.stderr
    columns = {c["column"]: c for c in json.loads(done.stdout)}
    assert columns["story_points"]["type"] == "DOUBLE" and columns["labels"]["type"] == "VARCHAR[]"
    assert columns["created_at"]["type"] == "TIMESTAMP WITH TIME ZONE" and columns["issue_key"]["description"]
    assert omnisql(demo, "describe", "pull_requests").returncode == 0  # the table name alone when it is unique
    missing = omnisql(demo, "describe", "jira.nope")
    assert missing.returncode == 1 and "`omnisql tables` lists them" in missing.stderr


def test_describe_shows_only_what_the_principal_may_read(demo: dict[str, Any]) -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "describe", "github.pull_requests", "--format", "csv",
                           "--uri", demo["flight_uri"], "--token", demo["tokens"]["token_qa"]], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "diff_link" not in done.stdout and "author_email" in done.stdout


# -- serve: the file decides, flags override only when given --------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox_tenant(demo: dict[str, Any], path: Path, listen: str, github_token_env: str = "GH_T") -> Path:
    gh, jira = demo["sandbox"]["github"], demo["sandbox"]["jira"]
    path.write_text(f"""tenant: acme
listen: {listen}
connectors:
  github: {{base_url: "{gh['base_url']}", org: {gh['org']}, token_env: {github_token_env}}}
  jira: {{base_url: "{jira['base_url']}", email_env: JIRA_E, api_token_env: JIRA_T}}
principals:
  - {{user: admin, token_env: ADMIN_T}}
""")
    return path


def sandbox_env(demo: dict[str, Any]) -> dict[str, str]:
    gh, jira = demo["sandbox"]["github"], demo["sandbox"]["jira"]
    return {**os.environ, "GH_T": gh["token"], "JIRA_E": jira["email"], "JIRA_T": jira["api_token"],
            "ADMIN_T": "admin-secret", "GH_BAD": "not-a-token"}


def test_serve_listens_where_the_file_says(demo: dict[str, Any], tmp_path: Path) -> None:
    port = free_port()
    config = sandbox_tenant(demo, tmp_path / "tenant.yaml", f"{{host: 127.0.0.1, port: {port}}}")
    info_file = tmp_path / "info.json"
    process = subprocess.Popen([sys.executable, "-m", "clients.cli", "serve", "--config", str(config), "--info-file",
                                str(info_file), "--http-port", "0"], cwd=ROOT, env=sandbox_env(demo),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not info_file.exists():
            assert process.poll() is None and time.time() < deadline, process.stdout.read() if process.stdout else ""
            time.sleep(0.1)
        assert json.loads(info_file.read_text())["flight_uri"] == f"grpc://127.0.0.1:{port}"
        done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT count(*) AS n FROM jira.issues",
                               "--uri", f"grpc://127.0.0.1:{port}", "--token", "admin-secret"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "(1 row)" in done.stdout, done.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_only_flags_given_override_the_file(demo: dict[str, Any], tmp_path: Path) -> None:
    from flight_server.config import load_config

    path = sandbox_tenant(demo, tmp_path / "t.yaml", "{host: 10.1.2.3, port: 9999, tls_cert_file: c.pem, "
                                                     "tls_key_file: k.pem}")
    with pytest.MonkeyPatch.context() as env:
        for key, value in sandbox_env(demo).items():
            env.setenv(key, value)
        config = load_config(path)

    def effective(*flags: str) -> tuple[Any, ...]:
        args = build_parser().parse_args(["serve", "--config", str(path), *flags])
        c = listen_overrides(config, args)
        return c.host, c.port, c.tls_cert_file, c.tls_key_file

    assert effective() == ("10.1.2.3", 9999, "c.pem", "k.pem")
    assert effective("--port", "0") == ("10.1.2.3", 0, "c.pem", "k.pem")
    assert effective("--host", "0.0.0.0") == ("0.0.0.0", 9999, "c.pem", "k.pem")
    assert effective("--tls-key", "other.pem") == ("10.1.2.3", 9999, "c.pem", "other.pem")


def test_demo_and_config_together_is_an_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "serve", "--demo", "--config",
                           str(ROOT / "tenant.example.yaml"), "--port", "0"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "omnisql serve: give --demo or --config, not both (the demo serves its own tenant)"


def test_the_dockerfile_command_line_is_accepted_and_listens_everywhere() -> None:
    """No Docker engine here: the image's CMD is read from the Dockerfile and parsed by the real CLI."""
    cmd = next(json.loads(line[len("CMD"):]) for line in (ROOT / "Dockerfile").read_text().splitlines()
               if line.startswith("CMD "))
    assert cmd[0] == "omnisql" and shutil.which("omnisql", path=str(Path(sys.executable).parent))
    args = build_parser().parse_args(cmd[1:])
    assert args.func is cmd_serve and args.config == "/etc/omnisql/tenant.yaml"
    assert (args.host, args.port, args.demo) == ("0.0.0.0", None, False)  # the port stays the file's
    from flight_server.config import TenantConfig

    local = TenantConfig(github=None, jira=None, principals=(), host="127.0.0.1", port=9000)
    assert (listen_overrides(local, args).host, listen_overrides(local, args).port) == ("0.0.0.0", 9000)
    assert "EXPOSE 8815" in (ROOT / "Dockerfile").read_text()


# -- config check --------------------------------------------------------------------------------------------------
def test_config_check_probes_each_connector_once(demo: dict[str, Any], tmp_path: Path, sandbox_log: SandboxLog
                                                 ) -> None:
    good = sandbox_tenant(demo, tmp_path / "good.yaml", "{port: 0}")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "config", "check", str(good)], cwd=ROOT,
                          env=sandbox_env(demo), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok  github:" in done.stdout and "ok  jira: Jira at" in done.stdout
    assert len(sandbox_log.requests("github")) == 1 and len(sandbox_log.requests("jira")) == 1
    bad = sandbox_tenant(demo, tmp_path / "bad.yaml", "{port: 0}", github_token_env="GH_BAD")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "config", "check", str(bad)], cwd=ROOT,
                          env=sandbox_env(demo), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert ("FAIL github: GitHub answered 401 Unauthorized: the token in $GH_BAD (connectors.github.token_env) is "
            "not valid") in done.stdout
    assert "not-a-token" not in done.stdout + done.stderr  # a credential is never printed


def test_config_check_reports_a_wrong_file_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("conectors: {}\nprincipals: [{user: a, token_env: UNSET_FOR_CHECK}]\n")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "config", "check", "--no-probe", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{path}:1:1: conectors: unknown key; did you mean 'connectors'?" in done.stderr
    assert f"{path}:2:24: principals[0].token_env: environment variable UNSET_FOR_CHECK" in done.stderr


# -- small things ----------------------------------------------------------------------------------------------------
def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and re.fullmatch(r"omnisql \d+\.\d+\.\d+\S*\n", done.stdout)


def test_environment_mistakes_are_sentences_not_tracebacks() -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clients.cli", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env={**os.environ, "OMNISQL_TOKEN": "t", **env})

    done = run("--version", OMNISQL_LOG_LEVEL="info")  # any case, as the README says
    assert done.returncode == 0 and done.stderr == ""
    done = run("--version", OMNISQL_LOG_LEVEL="loud")
    assert done.returncode == 2 and done.stderr == ("omnisql: OMNISQL_LOG_LEVEL must be one of DEBUG, INFO, WARNING, "
                                                    "ERROR, CRITICAL, not 'loud'\n")
    done = run("query", "SELECT 1", OMNISQL_URI="localhost:8815")  # the mistake is named where it was made
    assert done.returncode == 2 and done.stderr.startswith("omnisql query: $OMNISQL_URI: 'localhost:8815' is not a "
                                                           "Flight URI; write it as grpc://HOST:PORT")
    done = run("query", "SELECT 1", OMNISQL_TOKEN="s3cr\u00e9t")  # was a UnicodeEncodeError traceback from grpc
    assert done.returncode == 2 and done.stderr.startswith("omnisql query: $OMNISQL_TOKEN holds a character no token "
                                                           "has"), done.stderr
    assert "s3cr" not in done.stderr  # never echoed
    done = run("query", "--token", "a\tb", "SELECT 1")  # was INTERNAL: Invalid metadata
    assert done.returncode == 2 and done.stderr.startswith("omnisql query: --token holds a character"), done.stderr
    raw = subprocess.run([sys.executable.encode(), b"-m", b"clients.cli", b"query", b"SELECT '\xff'"], cwd=ROOT,
                         capture_output=True, timeout=60, env={**os.environ, "OMNISQL_TOKEN": "t", "LC_ALL": "C.UTF-8"})
    assert raw.returncode == 2 and raw.stderr == (b"omnisql query: the SQL is not UTF-8 text (byte 0xff at character "
                                                  b"9): is the terminal's encoding UTF-8?\n"), raw.stderr
    done = run("query", "--max-staleness-ms", "-5", "SELECT 1")
    assert done.returncode == 2 and "--max-staleness-ms: must be a whole number of milliseconds >= 0" in done.stderr


@pytest.mark.parametrize(("args", "said"), [
    (["--port", "99999"], "argument --port: must be a port from 0 to 65535 (0 picks a free one), not '99999'"),
    (["--port", "-1"], "argument --port: must be a port from 0 to 65535"),
    (["--http-port", "70000"], "argument --http-port: must be a port from 0 to 65535"),  # was an OverflowError
    (["--query-deadline-s", "-1"], "argument --query-deadline-s: must be a number of seconds above 0, not '-1'"),
    (["--query-deadline-s", "nan"], "argument --query-deadline-s: must be a number of seconds above 0"),
    (["--github-rate-limit", "-3"], "argument --github-rate-limit: must be a whole number >= 0, not '-3'")])
def test_serve_flags_out_of_range_are_usage_errors(args: list[str], said: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--demo", *args])
    assert exited.value.code == 2 and said in capsys.readouterr().err


def test_a_rate_limit_flag_out_of_range_is_named_as_typed(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("principals: [{user: a, token_env: CLI_T_TOKEN}]\n")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "serve", "--config", str(path), "--port", "0",
                           "--no-http", "--rate-limit-burst", "-1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "CLI_T_TOKEN": "t"})
    assert done.returncode == 2 and done.stderr == "omnisql serve: --rate-limit-burst must be at least 1, not -1\n"


def test_connector_check_mistakes_are_usage_errors(tmp_path: Path) -> None:
    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clients.cli", "connector", "check", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    linear = "connectors/manifests/linear.yaml"
    done = check(linear, "--table", "teems", "--no-probe")  # checked even without credentials or a probe
    assert done.returncode == 2 and done.stderr == ("omnisql connector check: --table: no table 'teems' in the "
                                                    "manifest; did you mean 'teams'? (tables: issues, teams, users)\n")
    done = check(linear, "--secret-env", "api_key")  # exit 2 as usage (SystemExit with a message was exit 1)
    assert done.returncode == 2 and done.stderr == "omnisql connector check: --secret-env takes NAME=VAR, not " \
                                                   "'api_key'\n"
    latin = tmp_path / "m.yaml"
    latin.write_bytes(b"version: 1\nname: caf\xe9\n")
    done = check(str(latin))
    assert done.returncode == 2 and done.stderr == (f"omnisql connector check: {latin}: not UTF-8 text (byte 0xe9 at "
                                                    "offset 20); save the file as UTF-8\n")


def test_any_command_piped_into_head_ends_quietly() -> None:
    for command in ("connector check connectors/manifests/linear.yaml --no-probe", "config schema", "serve --help"):
        done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} -m clients.cli {command} | head -1"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stderr == "" and len(done.stdout.splitlines()) == 1, (command, done)


@pytest.mark.parametrize(("args", "said"), [
    (["qurey", "SELECT 1"], "invalid choice: 'qurey' (choose from 'serve', "),
    (["query", "--format", "jsno", "SELECT 1"], "; did you mean 'json'?"),
    (["config", "chek", "t.yaml"], "; did you mean 'check'?"),
    (["query", "--fromat", "json", "SELECT 1"], "unrecognized arguments: --fromat SELECT 1; did you mean --format?"),
    (["serve", "--confg", "t.yaml"], "; did you mean --config?"),  # the options of the command given
    (["tables", "--shcema", "jira"], "; did you mean --schema?")])
def test_a_mistyped_command_or_flag_says_did_you_mean(args: list[str], said: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and said in err, err
    if args[0] == "qurey":
        assert err.rstrip().endswith("; did you mean 'query'?")


def all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_parsers(sub)


def test_every_option_has_help_that_shows_its_default() -> None:
    for parser in all_parsers(build_parser()):
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            text = HelpFormatter(parser.prog)._get_help_string(action) or ""
            assert action.help and "default" in text, (parser.prog, action.option_strings)


def test_every_command_and_flag_in_help_is_in_the_readme() -> None:
    """What ``omnisql --help`` and each ``COMMAND --help`` show, the README's *Commands and options* documents."""
    readme = (ROOT / "README.md").read_text()
    for parser in all_parsers(build_parser()):
        assert f"`{parser.prog}" in readme or f"| `{parser.prog.split()[-1]}`" in readme or \
            parser.prog in ("omnisql", "omnisql config", "omnisql connector"), parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for flag in (f for f in action.option_strings if f.startswith("--")):
                assert re.search(rf"`[^`\n]*(?<![\w-]){re.escape(flag)}(?![\w-])[^`\n]*`", readme), (parser.prog, flag)


def test_the_demo_banner_commands_run_as_printed(demo: dict[str, Any]) -> None:
    from demo.launch import banner_commands, banner_python

    venv_bin = Path(sys.executable).parent
    for command in banner_commands(demo["flight_uri"]):
        assert command.startswith(".venv/bin/omnisql ")
        done = subprocess.run(["bash", "-c", command.replace(".venv/bin/", f"{venv_bin}/", 1)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout, (command, done.stderr)
    done = subprocess.run([sys.executable, "-"], input="\n".join(banner_python(demo["flight_uri"])), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "merged_at" in done.stdout and not done.stderr, done.stderr  # no warning either
