"""``omnisql query`` / ``explain`` / ``tables`` / ``describe``: run against a server, print in one of four formats,
show progress on a terminal, cancel on the server with Ctrl-C, and explain errors in terms a person can act on.

Output formats: ``table`` (aligned text; EXPLAIN as one block per step), ``json`` (an array of objects), ``csv``
(a header, then rows) and ``arrow`` (an Arrow IPC stream, for piping into pyarrow, DuckDB, polars ...). Only
``table`` shows a bounded number of rows by default (50); the others print every row unless ``--max-rows`` says
otherwise. Whenever rows are left out, stderr says how many and how to see them."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pyarrow as pa

from clients.flight_rpc import CallCancelled, FlightRpc, PlanInfo, RpcError, TableEntry
from clients.progress import Progress, watch_progress
from clients.render import json_rows, render_table, render_vertical, write_csv_header, write_csv_rows

__all__ = ["FORMATS", "TABLE_MAX_ROWS", "cmd_describe", "cmd_query", "cmd_tables", "explain_error", "max_rows"]

FORMATS = ("table", "json", "csv", "arrow")
TABLE_MAX_ROWS = 50  # the table format's default; the machine formats print every row
EXIT_CANCELLED = 130  # 128 + SIGINT, as shells report a Ctrl-C
_TOKEN_HELP = "pass `--token` or set `OMNISQL_TOKEN`"


def max_rows(text: str) -> int | str:
    """``--max-rows``: a whole number, or ``all``."""
    if text.strip().lower() == "all":
        return "all"
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number or 'all', not {text!r}")
    return int(text)


# -- errors --------------------------------------------------------------------------------------------------------
_SYNTAX = re.compile(r"SQL syntax error at line (\d+), column (\d+)(?: near '(.*?)')?(?:: (.*))?$", re.DOTALL)
_INTERNAL = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]+'>")


def _syntax_error(message: str, sql: str) -> str | None:
    """``SQL syntax error at line L, column C near 'X': <detail>`` → the same, then the SQL line and a caret
    under ``X`` (the server's column is where ``X`` starts)."""
    prefix, _, rest = message.partition("SQL syntax error")
    match = _SYNTAX.match("SQL syntax error" + rest)
    if match is None:
        return None
    line_no, col, near, detail = int(match[1]), int(match[2]), match[3] or "", (match[4] or "").strip()
    if _INTERNAL.search(detail) or "<class" in detail:
        detail = f"something is missing after {near}" if near else "the statement is incomplete"
    elif detail.startswith("Invalid expression / Unexpected token"):
        detail = "unexpected token"
    elif detail:
        detail = detail[0].lower() + detail[1:]
    head = f"{prefix}SQL syntax error at line {line_no}, column {max(1, col)}"
    head += f" near '{near}'" if near else ""
    head += f": {detail}" if detail else ""
    lines = sql.splitlines() or [""]
    if not 1 <= line_no <= len(lines):
        return head
    text = lines[line_no - 1].expandtabs(1)
    width = max(1, len(near)) if near and "\n" not in near else 1
    start = max(0, min(len(text), col - 1))
    gutter = f"{line_no} | "
    before = re.search(r"(?<![\w.\"'])([A-Za-z]{3,})\s+$", text[:start])  # the word before the unexpected token
    if before and before[1].upper() not in _KEYWORDS:
        close = difflib.get_close_matches(before[1].upper(), _KEYWORDS, n=1, cutoff=0.75)
        head += f" (is {before[1]} a misspelt {close[0]}?)" if close else ""
    return "\n".join([head, f"  {gutter}{text}", "  " + " " * (len(gutter) - 2) + "| " + " " * start + "^" * width])


# SQL's words a statement is built of: a misspelt one (FORM, WHER, SELEC) is the usual cause of "unexpected token"
_KEYWORDS = ["SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT", "RIGHT",
             "INNER", "OUTER", "FULL", "CROSS", "USING", "DISTINCT", "UNION", "EXCEPT", "INTERSECT", "WITH", "CASE",
             "WHEN", "THEN", "ELSE", "EXPLAIN", "ANALYZE", "DESCRIBE", "SHOW", "QUALIFY", "WINDOW", "OVER",
             "PARTITION", "BETWEEN", "LIKE", "ILIKE", "NULL", "NOT", "AND", "DESC", "ASC", "VALUES", "TABLES", "AS",
             "BY", "ON", "OR", "IN", "IS", "ALL", "END"]


_COLUMN = re.compile(r"Column '([^']+)' could not be resolved\. Line: (\d+), Col: (\d+)")


_UNKNOWN_COLUMN = re.compile(r"Unknown column: ([\w.\"]+?)[;,]?(?:\s|$)")


def _unknown_column(message: str) -> str | None:
    """The column an unknown-column error names (either of the two forms the server words it in)."""
    match = _COLUMN.search(message) or _UNKNOWN_COLUMN.search(message)
    return match[1].strip('"') if match else None


def _bare_column_error(message: str, sql: str) -> str | None:
    """``Unknown column: x`` (a qualified reference, without a position) → a caret under ``x`` when the SQL names it
    exactly once."""
    match = _UNKNOWN_COLUMN.search(message)
    if match is None:
        return None
    name = match[1].strip('"').rpartition(".")[2]
    lines = sql.splitlines() or [""]
    found = [(i, m.start()) for i, line in enumerate(lines)
             for m in re.finditer(rf"(?<![\w]){re.escape(name)}(?!\w)", line.expandtabs(1))]
    if len(found) != 1:
        return None
    line_no, start = found[0][0] + 1, found[0][1]
    gutter = f"{line_no} | "
    return "\n".join([message, f"  {gutter}{lines[line_no - 1].expandtabs(1)}",
                      "  " + " " * (len(gutter) - 2) + "| " + " " * start + "^" * len(name)])


def _column_error(message: str, sql: str) -> str | None:
    """DuckDB-style ``Column 'x' could not be resolved. Line: L, Col: C`` (C where x ends) → with a caret."""
    match = _COLUMN.search(message)
    if match is None:
        return None
    name, line_no, end_col = match[1], int(match[2]), int(match[3])
    lines = sql.splitlines() or [""]
    if not 1 <= line_no <= len(lines):
        return message
    text = lines[line_no - 1].expandtabs(1)
    start = max(0, min(len(text), end_col - len(name)))
    gutter = f"{line_no} | "
    return "\n".join([message, f"  {gutter}{text}", "  " + " " * (len(gutter) - 2) + "| " + " " * start
                      + "^" * max(1, len(name))])


def _with_column_hint(text: str, message: str, sql: str, rpc: FlightRpc) -> str:
    """An unknown column with ``(did you mean ...?)``: the closest columns of the tables the query names, from the
    catalog the token may read (one GetTables call; the hint is left out when it fails)."""
    name = _unknown_column(message)
    if name is None:
        return text
    try:
        entries = rpc.tables()
    except (RpcError, CallCancelled):
        return text
    named = [e for e in entries if e.schema is not None and re.search(
        rf"(?<![\w.]){re.escape(str(e.schema_name))}\s*\.\s*{re.escape(e.name)}(?!\w)|"
        rf"\b(?:from|join)\s+{re.escape(e.name)}(?!\w)", sql, re.IGNORECASE)]
    columns = sorted({field.name for e in named for field in e.schema or ()})
    close = difflib.get_close_matches(name.rpartition(".")[2].lower(), columns, n=3, cutoff=0.7)
    if not close:
        return text
    first, _, rest = text.partition("\n")
    options = close[0] if len(close) == 1 else ", ".join(close[:-1]) + f" or {close[-1]}"
    return f"{first} (did you mean {options}?)" + (f"\n{rest}" if rest else "")


def _connection_error(message: str, uri: str) -> str:
    """gRPC's account of a failed connection, as what to do about it."""
    low = message.lower()
    reason = re.sub(r"^.*?last error: \w+: (?:ipv[46]:\S+?: )?", "", message, flags=re.DOTALL)
    reason = re.sub(r"(: OK)+$", "", reason).strip()
    plain = uri.replace("grpc+tls://", "grpc://", 1)
    if "wrong_version_number" in low or "http_request" in low:
        return (f"cannot connect to {uri} over TLS: the server there does not speak TLS; use {plain} for a "
                "plaintext server (the demo's)")
    if "http1.x" in low or "expected settings frame" in low:
        return (f"{uri} answers HTTP/1.1, not gRPC: that is an HTTP port (OmniSQL's HTTP API and console listen on "
                "8001 by default); Flight SQL listens on 8815 by default: pass `--uri grpc://HOST:8815`")
    if "resolving" in low or "lookup" in low:
        return f"cannot find the host of {uri} ({reason}): check `--uri` (or `OMNISQL_URI`)"
    if "ssl" in low or "handshake" in low or "certificate" in low:
        return (f"cannot connect to {uri} over TLS ({reason}): pass `--tls-root-certs` with the PEM of the CA "
                "that signed the server's certificate, or use grpc:// for a plaintext server")
    return (f"cannot reach an OmniSQL server at {uri} ({reason}): is it running? `make demo` starts one on the "
            "default address; pass `--uri` (or set `OMNISQL_URI`) for another")


# The server's advice names Flight-level ways out; the CLI's options are named instead.
_ADVICE = (
    (re.compile(r"; use a token from your OmniSQL admin.*$", re.DOTALL),
     f"; {_TOKEN_HELP} with a valid token (the demo prints its tokens)"),
    (re.compile(r": send 'authorization: Bearer <token>'.*$", re.DOTALL), f": {_TOKEN_HELP}"),
    (re.compile(r"accept it with allow_stale"), "pass `--allow-stale` to accept it"),
    (re.compile(r"(cached data with a larger) max_staleness_ms"), r"\1 `--max-staleness-ms`"),
    (re.compile(r"check the column names against the catalog \(GetTables[^)]*\)"),
     "check the column names with `omnisql describe TABLE`"),
)


_UNKNOWN_TABLE = re.compile(r"unknown table (\S+); (?:available tables: |write it with its schema, e\.g\. )([\w., ]+)")


def _did_you_mean(name: str, known: list[str]) -> list[str]:
    """The tables a mistyped ``name`` most likely meant: the same table in every schema that has it when the
    schema was left out, else the closest names (``jira.isues`` → ``jira.issues``, ``jria.issues`` too)."""
    lowered = {k.lower(): k for k in known}
    if "." not in name:
        same = [k for k in known if k.rpartition(".")[2].lower() == name.lower()]
        if same:
            return same
        bare = sorted({k.rpartition(".")[2].lower() for k in known})
        close = difflib.get_close_matches(name.lower(), bare, n=1, cutoff=0.75)
        return [k for k in known if close and k.rpartition(".")[2].lower() == close[0]]
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.75)]


def _suggest_table(message: str) -> str:
    """``unknown table jira.isues; available tables: ...`` → ``unknown table jira.isues; did you mean
    jira.issues? available tables: ...`` (the server lists the tables the token may read)."""
    match = _UNKNOWN_TABLE.search(message)
    if match is None:
        return message
    close = _did_you_mean(match[1], [t.strip() for t in match[2].split(",") if t.strip()])
    if not close:
        return message
    options = close[0] if len(close) == 1 else ", ".join(close[:-1]) + f" or {close[-1]}"
    at = match.end(1)
    return f"{message[:at]}; did you mean {options}?{message[at + 1:]}"


# gRPC's words for a connection that went away mid-call (the server process stopped, a proxy dropped it)
_CONNECTION_LOST = ("cancelling all calls", "socket closed", "connection reset", "goaway", "stream removed",
                    "broken pipe")


def explain_error(exc: RpcError, sql: str, uri: str) -> str:
    """The message to print (without ``error: ``): the server's own text, with a caret under a syntax error,
    the CLI's options in its advice, and transport failures said plainly."""
    message = exc.message.strip()
    if exc.code is None and exc.status == "UNAVAILABLE" and any(
            word in message.lower() for word in _CONNECTION_LOST):
        return (f"the server at {uri} closed the connection while the query ran ({message}): it was stopped or "
                "restarted; run the query again once it is back")
    if exc.code is None and exc.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and (
            any(word in message.lower() for word in ("connect", "handshake", "ssl", "resolving"))):
        return _connection_error(message, uri)
    if exc.code == "UNAUTHENTICATED" or exc.status == "UNAUTHENTICATED":
        for pattern, replacement in _ADVICE[:2]:
            message = pattern.sub(replacement, message)
    else:
        for pattern, replacement in _ADVICE[2:]:
            message = pattern.sub(replacement, message)
    # DuckDB quotes the SQL it ran — the planner's rewrite over its scans, not the query the user wrote: drop it.
    message = re.sub(r"\n+LINE \d+: .*$", "", message, flags=re.DOTALL)
    message = _suggest_table(message)
    if "SQL syntax error at line" in message:
        message = _syntax_error(message, sql) or message
    elif _COLUMN.search(message):
        message = _column_error(message, sql) or message
    elif _UNKNOWN_COLUMN.search(message):
        message = _bare_column_error(message, sql) or message
    if exc.code and not message.startswith(exc.code):
        message = f"{exc.code}: {message}"
    elif not exc.code and exc.status not in ("OK", "UNKNOWN") and not message.startswith(exc.status):
        message = f"{exc.status}: {message}"
    return message


# -- running a call with progress and Ctrl-C -----------------------------------------------------------------------
@dataclass
class Outcome:
    code: int = 0
    error: BaseException | None = None


def run_cancellable(rpc: FlightRpc, work: Callable[[Progress], int], progress: Progress) -> int:
    """``work`` in a thread; this (main) thread redraws the progress line and turns Ctrl-C into a gRPC cancel:
    the server stops the query, and the command ends with 130 and no traceback."""
    outcome = Outcome()

    def target() -> None:
        try:
            outcome.code = work(progress)
        except BaseException as exc:  # handed to the main thread
            outcome.error = exc

    thread = threading.Thread(target=target, name="omnisql-call", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
            progress.tick()
    except KeyboardInterrupt:
        rpc.cancel()
        progress.stop()
        print("omnisql: cancelled; the server stops the query", file=sys.stderr)
        thread.join(5)
        return EXIT_CANCELLED
    progress.stop()
    if outcome.error is not None:
        if isinstance(outcome.error, CallCancelled):
            return EXIT_CANCELLED
        raise outcome.error
    return outcome.code


# -- output --------------------------------------------------------------------------------------------------------
@dataclass
class Counted:
    shown: int = 0
    total: int = 0


def _limited(batches: Iterator[pa.RecordBatch], limit: int | None, counted: Counted) -> Iterator[pa.RecordBatch]:
    """The batches cut to ``limit`` rows; the rest are still read (and counted), so the note can say how many."""
    for batch in batches:
        counted.total += batch.num_rows
        room = batch.num_rows if limit is None else max(0, limit - counted.shown)
        if room:
            part = batch if room >= batch.num_rows else batch.slice(0, room)
            counted.shown += part.num_rows
            yield part


def write_result(fmt: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch], limit: int | None, vertical: bool,
                 progress: Progress) -> Counted:
    """Print the result on stdout in ``fmt``; returns how many rows were shown of how many."""
    counted = Counted()
    out = sys.stdout
    if fmt == "arrow":
        sink = out.buffer
        with pa.ipc.new_stream(sink, schema) as writer:
            for part in _limited(batches, limit, counted):
                progress.stop()
                writer.write_batch(part)
        sink.flush()
        return counted
    if fmt == "csv":
        kept = _limited(batches, limit, counted)
        first = next(kept, None)
        progress.stop()
        write_csv_header(out, schema.names)
        for part in ([first] if first is not None else []):
            write_csv_rows(out, part)
        for part in kept:
            write_csv_rows(out, part)
        out.flush()
        return counted
    table = pa.Table.from_batches(list(_limited(batches, limit, counted)), schema=schema)
    progress.stop()
    if fmt == "json":
        # \uXXXX escapes where stdout cannot hold a character (a terminal that is not UTF-8): the same JSON
        out.write(json.dumps(json_rows(table), indent=2, ensure_ascii=not _utf8(out)) + "\n")
    elif vertical:
        out.write(render_vertical(table, table.num_rows) + "\n")
    else:
        out.write(_table_text(table, counted.total, None if _utf8(out) else out.encoding) + "\n")
    out.flush()
    return counted


def _utf8(stream: TextIO) -> bool:
    from clients.cli import utf8

    return utf8(stream)


def _table_text(shown: pa.Table, total: int, encoding: str | None = None) -> str:
    lines = render_table(shown, shown.num_rows, encoding).splitlines()
    more = total - shown.num_rows
    lines[-1] = f"({total} row{'s' if total != 1 else ''}" + (f", {more} not shown)" if more > 0 else ")")
    return "\n".join(lines)


def truncation_note(counted: Counted, limit: int | None) -> str | None:
    if counted.total <= counted.shown:
        return None
    return (f"omnisql: showing {counted.shown} of {counted.total} rows (--max-rows {limit}); pass `--max-rows all` "
            "to see them all")


# -- commands ------------------------------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> FlightRpc | int:
    token = (args.token or "").strip()  # a token pasted with its line break works as the token alone
    if not token:
        print(f"omnisql {args.command}: no token: {_TOKEN_HELP}", file=sys.stderr)
        return 2
    if not all(" " <= ch < "\x7f" for ch in token):  # it travels as a header value: printable ASCII (never echoed)
        given = "--token" if args.token != os.environ.get("OMNISQL_TOKEN") else "$OMNISQL_TOKEN"
        print(f"omnisql {args.command}: {given} holds a character no token has (a line break, a control character "
              "or one outside printable ASCII): check it was copied whole and alone", file=sys.stderr)
        return 2
    try:
        roots = Path(args.tls_root_certs).read_bytes() if args.tls_root_certs else None
    except OSError as exc:
        print(f"omnisql {args.command}: cannot read --tls-root-certs: {exc.strerror or exc}", file=sys.stderr)
        return 2
    headers = {}
    if getattr(args, "max_staleness_ms", None) is not None:
        headers["x-omnisql-max-staleness-ms"] = str(args.max_staleness_ms)
    if getattr(args, "allow_stale", False):
        headers["x-omnisql-allow-stale"] = "true"
    try:
        return FlightRpc(args.uri, token, tls_root_certs=roots, headers=headers)
    except ValueError as exc:
        given = "--uri" if args.uri != os.environ.get("OMNISQL_URI") else "$OMNISQL_URI"
        print(f"omnisql {args.command}: {given}: {exc}", file=sys.stderr)
        return 2


def _limit(args: argparse.Namespace) -> int | None:
    if args.max_rows is None:  # not given: the format's default
        return TABLE_MAX_ROWS if args.format == "table" else None
    return None if args.max_rows == "all" else int(args.max_rows)


def _refuse_binary_tty(args: argparse.Namespace) -> bool:
    if args.format == "arrow" and sys.stdout.isatty():
        print(f"omnisql {args.command}: --format arrow writes binary Arrow IPC; redirect it to a file or pipe it "
              "(e.g. into pyarrow.ipc.open_stream(sys.stdin.buffer) or DuckDB)", file=sys.stderr)
        return True
    return False


def _run(args: argparse.Namespace, work: Callable[[FlightRpc, Progress], int], sql: str = "") -> int:
    if _refuse_binary_tty(args):
        return 2
    rpc = _client(args)
    if isinstance(rpc, int):
        return rpc
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty())
    try:
        return run_cancellable(rpc, lambda p: work(rpc, p), progress)
    except RpcError as exc:
        text = explain_error(exc, sql, args.uri)
        if sql and _unknown_column(exc.message):
            text = _with_column_hint(text, exc.message, sql, rpc)
        print(f"error: {text}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `| head`: the reader has what it wanted; stop the query too
        rpc.cancel()
        _silence_stdout()
        return 0
    finally:
        rpc.close()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def cmd_query(args: argparse.Namespace) -> int:
    """``query`` and ``explain``."""
    if args.sql == "-":  # the SQL from stdin: `omnisql query - < report.sql`
        if sys.stdin.isatty():
            print(f"omnisql {args.command}: reading the SQL from stdin (`-`): pipe or redirect it, e.g. "
                  f"`omnisql {args.command} - < query.sql`", file=sys.stderr)
            return 2
        args.sql = sys.stdin.buffer.read().decode("utf-8", "surrogateescape").strip()
    bad = next((i for i, ch in enumerate(args.sql) if "\udc80" <= ch <= "\udcff"), None)
    if bad is not None:  # bytes that were not UTF-8 reach Python as lone surrogates
        print(f"omnisql {args.command}: the SQL is not UTF-8 text (byte 0x{ord(args.sql[bad]) - 0xdc00:02x} at "
              f"character {bad + 1}): is the terminal's encoding UTF-8?", file=sys.stderr)
        return 2
    sql = ("EXPLAIN " if args.command == "explain" else "") + args.sql
    vertical = sql.lstrip().upper().startswith("EXPLAIN")
    limit = _limit(args)

    def work(rpc: FlightRpc, progress: Progress) -> int:
        plan = rpc.plan(sql)
        estimate = plan.metadata.get("est_api_calls")
        progress.set("running", estimate=estimate if isinstance(estimate, int) else None)
        with watch_progress(rpc, progress):
            return _fetch_and_write(args, rpc, plan, progress, limit, vertical)

    return _run(args, work, args.sql)


def _fetch_and_write(args: argparse.Namespace, rpc: FlightRpc, plan: PlanInfo, progress: Progress,
                     limit: int | None, vertical: bool) -> int:
    """DoGet every ticket and print the batches as they come; the truncation note, if any, on stderr."""
    schema = plan.schema
    streams = [rpc.stream(ticket) for ticket in plan.tickets]
    if streams:
        schema = streams[0][0] or schema

    def all_batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        for _, part in streams:
            for batch in part:
                rows += batch.num_rows
                progress.set("receiving", rows=rows)
                yield batch

    counted = write_result(args.format, schema or pa.schema([]), all_batches(), limit, vertical, progress)
    note = truncation_note(counted, limit)
    if note:
        print(note, file=sys.stderr)
    return 0


def _tables_table(entries: list[TableEntry]) -> pa.Table:
    return pa.table({"schema": [e.schema_name for e in entries], "table": [e.name for e in entries],
                     "type": [e.table_type for e in entries],
                     "columns": pa.array([len(e.schema) if e.schema is not None else None for e in entries],
                                         pa.int32())})


def _print_table(args: argparse.Namespace, table: pa.Table, progress: Progress) -> int:
    limit = _limit(args)
    counted = write_result(args.format, table.schema, iter(table.to_batches()), limit, False, progress)
    note = truncation_note(counted, limit)
    if note:
        print(note, file=sys.stderr)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    """``tables``: every table the token may read (Flight SQL GetTables), optionally of one schema."""

    def work(rpc: FlightRpc, progress: Progress) -> int:
        entries = rpc.tables()
        schemas = sorted({str(e.schema_name) for e in entries})
        wanted = args.schema if args.schema is None or args.schema in schemas else next(
            (name for name in schemas if name.lower() == args.schema.lower()), args.schema)  # as SQL: any case
        if wanted is not None and wanted not in schemas:
            progress.stop()
            close = difflib.get_close_matches(args.schema, schemas, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            print(f"omnisql tables: no schema {args.schema} that this token may read; {hint}schemas: "
                  f"{', '.join(schemas)}", file=sys.stderr)
            return 1
        entries = [e for e in entries if wanted is None or e.schema_name == wanted]
        return _print_table(args, _tables_table(sorted(entries, key=lambda e: e.qualified_name)), progress)

    return _run(args, work)


_TYPE_NAME = b"ARROW:FLIGHT:SQL:TYPE_NAME"
_REMARKS = b"ARROW:FLIGHT:SQL:REMARKS"


def _columns_table(entry: TableEntry) -> pa.Table:
    fields = list(entry.schema) if entry.schema is not None else []
    meta = [f.metadata or {} for f in fields]
    return pa.table({"column": [f.name for f in fields],
                     "type": [m.get(_TYPE_NAME, b"").decode() or str(f.type)
                              for f, m in zip(fields, meta, strict=True)],
                     "nullable": [f.nullable for f in fields],
                     "description": [m.get(_REMARKS, b"").decode() or None for m in meta]})


def _system_table(rpc: FlightRpc, name: str) -> TableEntry | None:
    """A table every principal may query that GetTables does not list (``omnisql.query_log``,
    ``information_schema.columns``): its columns are the result schema of ``SELECT * ... LIMIT 0``, planned only."""
    if name.split(".")[0].lower() not in ("omnisql", "information_schema"):
        return None
    try:
        plan = rpc.plan(f"SELECT * FROM {name} LIMIT 0")
    except RpcError:
        return None
    schema_name, _, table = name.partition(".")
    return TableEntry(None, schema_name, table, "SYSTEM TABLE", plan.schema)


def cmd_describe(args: argparse.Namespace) -> int:
    """``describe TABLE``: its columns with their SQL types (GetTables with include_schema)."""
    schema_name, _, name = args.table.rpartition(".")

    def work(rpc: FlightRpc, progress: Progress) -> int:
        entries = rpc.tables()
        found = [e for e in entries if e.name == name and (not schema_name or e.schema_name == schema_name)]
        if not found:  # SQL names are case-insensitive (FROM GitHub.Users works), so is describe
            found = [e for e in entries if e.name.lower() == name.lower()
                     and (not schema_name or str(e.schema_name).lower() == schema_name.lower())]
        if not found and re.fullmatch(r"[A-Za-z_]\w*\.[A-Za-z_]\w*", args.table):
            system = _system_table(rpc, args.table)  # omnisql.query_log, information_schema.*: not in GetTables
            if system is not None:
                return _print_table(args, _columns_table(system), progress)
        if len(found) != 1:
            progress.stop()
            if found:
                names = ", ".join(sorted(e.qualified_name for e in found))
                print(f"omnisql describe: {args.table} is ambiguous ({names}); write it with its schema",
                      file=sys.stderr)
            else:
                close = _did_you_mean(args.table, sorted(e.qualified_name for e in entries))
                hint = f"did you mean {' or '.join(close)}? " if close else ""
                print(f"omnisql describe: no table {args.table} that this token may read; {hint}`omnisql tables` "
                      "lists them", file=sys.stderr)
            return 1
        return _print_table(args, _columns_table(found[0]), progress)

    return _run(args, work)
