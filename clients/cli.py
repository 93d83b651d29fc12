"""The ``omnisql`` command: serve (demo or tenant config), sandbox, query, explain."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import difflib
import io
import json
import logging
import math
import os
import re
import sys
from typing import Any, NoReturn, TextIO

from clients.serve_cmd import (
    DEFAULT_GITHUB_RATE_LIMIT,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_PORT,
    LIMIT_FLAGS,
    NO_DEMO,
    cmd_serve,
    demo_launcher,
    http_settings,
    listen_overrides,
    wait_forever,
    write_info,
)

__all__ = ["LIMIT_FLAGS", "LOG_LEVELS", "Parser", "build_parser", "cmd_serve", "http_settings", "listen_overrides",
           "main", "utf8"]


def cmd_sandbox(args: argparse.Namespace) -> int:
    launcher = demo_launcher()
    if launcher is None:
        print(f"omnisql sandbox: {NO_DEMO}", file=sys.stderr)
        return 2
    try:
        faults = launcher.parse_fault_specs(args.faults)
    except ValueError as exc:
        print(f"omnisql sandbox: --faults {exc}", file=sys.stderr)
        return 2
    sandbox = launcher.start_sandbox(host=args.host, github_rate_limit=args.github_rate_limit or
                                     DEFAULT_GITHUB_RATE_LIMIT, faults=faults)
    print(json.dumps(sandbox.info() | {"faults": faults}, indent=2))
    sys.stdout.flush()
    write_info(args.info_file, {"sandbox": sandbox.info(), "faults": faults})
    wait_forever()
    sandbox.stop()
    return 0


def _size(text: str) -> int:
    from flight_server.limits import LimitError, parse_size

    try:
        return parse_size("the size", text)
    except LimitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    """A TCP port, checked as the tenant file's listen.port is (0: a free one)."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535 (0 picks a free one), not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _whole(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text!r}")
    return int(text)


def _milliseconds(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of milliseconds >= 0, not {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


class Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped command or choice (``omnisql qurey``, ``--format jsno``); its
    subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            close = difflib.get_close_matches(match[1], re.findall(r"'([^']*)'", match[2]), n=1, cutoff=0.6)
            message += f"; did you mean {close[0]!r}?" if close else ""
        unknown = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        if unknown:
            close = difflib.get_close_matches(unknown[1], sorted(self._options(self._words)), n=1, cutoff=0.7)
            message += f"; did you mean {close[0]}?" if close else ""
        super().error(message)

    _words: list[str] = []  # the command line being parsed: its command words pick the options to suggest from

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def _options(self, words: list[str]) -> set[str]:
        """The long options of the (sub)command ``words`` name: ``serve``'s for ``omnisql serve ...``."""
        options = {o for o in self._option_string_actions if o.startswith("--")}
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                named = next((w for w in words if w in action.choices), None)
                for name, sub in action.choices.items():
                    if isinstance(sub, Parser) and named in (None, name):
                        options |= sub._options(words)
        return options


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help shows its default: the text says it, or ``(default: ...)`` is added."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.option_strings and "default" not in text and action.default is not argparse.SUPPRESS:
            shown = "off" if action.default is False else "none" if action.default in (None, "") else action.default
            text += f" (default: {shown})"
        return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("omnisql")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _lazy(name: str) -> Any:
    """A ``clients.query`` command, imported when it runs (``serve`` does not need pyarrow's client side)."""

    def run(args: argparse.Namespace) -> int:
        import clients.query

        return int(getattr(clients.query, name)(args))

    return run


def _lazy_config(name: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        import clients.config_cmd

        return int(getattr(clients.config_cmd, name)(args))

    return run


def _connector_command(connector: argparse.ArgumentParser) -> None:
    actions = connector.add_subparsers(dest="connector_command", required=True, metavar="ACTION")
    check = actions.add_parser("check", formatter_class=HelpFormatter,
                               help="validate a manifest, show each table's pushdown, dry-run one page",
                               description="validate a connector manifest (every problem, with its line), print its "
                                           "tables and the pushdown each column supports, and fetch one page of rows "
                                           "from the configured endpoint")
    check.add_argument("file", help="the manifest YAML (e.g. connectors/manifests/linear.yaml)")
    check.add_argument("--table", help="the table to dry-run (default: the first)")
    check.add_argument("--base-url", help="the API to call (default: the manifest's base_url)")
    check.add_argument("--secret-env", action="append", metavar="NAME=VAR",
                       help="read the manifest's secret NAME from environment variable VAR (default: "
                            "<MANIFEST>_<NAME>, e.g. LINEAR_API_KEY); repeatable")
    check.add_argument("--var", action="append", metavar="NAME=VALUE", help="a manifest variable; repeatable")
    check.add_argument("--auth", help="which of the manifest's auth types to use (default: the first with secrets)")
    check.add_argument("--rows", type=_count, default=5, metavar="N", help="rows to fetch (default: %(default)s)")
    check.add_argument("--no-probe", action="store_true", help="only validate; send nothing (default: off)")

    def run(args: argparse.Namespace) -> int:
        import clients.connector_cmd

        return int(clients.connector_cmd.cmd_connector_check(args))

    check.set_defaults(func=run)


def _client_options(parser: argparse.ArgumentParser) -> None:
    """What every client command takes: where the server is, who is asking, how to print."""
    from clients.query import FORMATS, TABLE_MAX_ROWS, max_rows

    parser.add_argument("--uri", default=os.environ.get("OMNISQL_URI") or DEFAULT_URI,
                        help=f"the server (default: $OMNISQL_URI, else {DEFAULT_URI})")
    parser.add_argument("--token", default=os.environ.get("OMNISQL_TOKEN", ""),
                        help="bearer token (default: $OMNISQL_TOKEN)")
    parser.add_argument("--tls-root-certs", metavar="PEM",
                        help="PEM of the CA to trust for a grpc+tls:// server (default: the system's)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (aligned text), json (array of objects), csv, or arrow (Arrow IPC stream on "
                             "stdout, for pipes) (default: %(default)s)")
    parser.add_argument("--max-rows", type=max_rows, default=None, metavar="N|all",
                        help=f"rows to print; any left out are counted on stderr (default: {TABLE_MAX_ROWS} for "
                             "table, all for json, csv and arrow)")


DEFAULT_URI = "grpc://127.0.0.1:8815"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="omnisql", description="SQL over SaaS apps, via Arrow Flight SQL",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"omnisql {_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)

    serve = command("serve", "run the Flight SQL server")
    serve.add_argument("--demo", action="store_true",
                       help="start the sandbox and serve the demo tenant (from a source checkout; default: off)")
    serve.add_argument("--config", metavar="PATH", help="tenant config YAML (not with --demo; default: none)")
    serve.add_argument("--host", default=None, help=f"address to listen on (overrides listen.host; default: the "
                                                    f"config's, else {DEFAULT_HOST}; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=_port, default=None,
                       help=f"port to listen on; 0 picks a free one (overrides listen.port; default: the config's, "
                            f"else {DEFAULT_PORT})")
    serve.add_argument("--info-file", metavar="PATH",
                       help="write connection info as JSON here once ready (default: none)")
    serve.add_argument("--tls-cert", metavar="PEM", help="certificate chain: serve grpc+tls:// (with --tls-key; "
                                                         "overrides listen.tls_cert_file; default: plaintext)")
    serve.add_argument("--tls-key", metavar="PEM",
                       help="private key for --tls-cert (overrides listen.tls_key_file; default: none)")
    serve.add_argument("--workers", type=_count, default=None, metavar="N",
                       help="serving processes sharing the port (SO_REUSEPORT), e.g. one per core; without Redis each "
                            "gets 1/N of the rate limits and query caps (overrides workers; default: the config's, "
                            "else 1)")
    serve.add_argument("--query-deadline-s", type=_seconds, default=None, metavar="S",
                       help="stop any query (planning, fetching, DuckDB) after this many seconds "
                            "(overrides query_deadline_s; default 60)")
    for key, (kind, help_text) in LIMIT_FLAGS.items():
        serve.add_argument("--" + key.replace("_", "-"), type=_size if kind == "size" else _count, default=None,
                           metavar=kind.upper(), help=f"{help_text} (overrides {key} of the config)")
    from flight_server.governance import add_serve_flags

    add_serve_flags(serve)
    serve.add_argument("--http-port", type=_port, default=None, metavar="N",
                       help="port of the HTTP API, web console, /metrics and health checks, on the same host; 0 "
                            f"picks a free one (overrides listen.http_port; default: the config's, else "
                            f"{DEFAULT_HTTP_PORT})")
    serve.add_argument("--no-http", action="store_true",
                       help="serve Flight SQL only, no HTTP (overrides listen.http_port as null does; default: off)")
    serve.add_argument("--http-max-rows", type=_count, default=None, metavar="N",
                       help="the most rows a JSON answer of POST /v1/query holds; more is refused (Arrow answers "
                            "and Flight have no such cap) (overrides http_max_rows; default: the config's, else "
                            "10000)")
    serve.add_argument("--trace-exporter", choices=("none", "console", "otlp"), default=None,
                       help="where OpenTelemetry spans go: nowhere, stderr, or OTLP/HTTP to "
                            "$OTEL_EXPORTER_OTLP_ENDPOINT (overrides tracing.exporter; default: the config's, else "
                            "none)")
    serve.set_defaults(func=cmd_serve)
    sandbox = command("sandbox", "run only the stand-ins: GitHub, Jira, Salesforce, Linear (from a source checkout)")
    sandbox.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    sandbox.add_argument("--info-file", metavar="PATH",
                         help="write the stand-ins' URLs and credentials as JSON here (default: none)")
    sandbox.add_argument("--faults", action="append", default=[], metavar="APP:KEY=VALUE,...",
                         help="misbehaviour from the start, per app (github, jira, salesforce, linear or all; "
                              "repeatable): latency_ms (or latency_s), jitter_ms (or jitter_s), error_rate (0-1, "
                              "answered fail_status, default 503; 429 with retry_after is a 429 storm), fail_next, "
                              "fail_status, retry_after, "
                              "truncate_next, malformed_next, drop_next, etags (github; false: no 304s). E.g. "
                              "--faults github:latency_ms=200,error_rate=0.1 (default: none)")
    sandbox.set_defaults(func=cmd_sandbox)
    for parser_, only in ((serve, "with --demo only; "), (sandbox, "")):
        parser_.add_argument("--github-rate-limit", type=_whole, default=None, metavar="N",
                             help=f"the sandbox GitHub's hourly request budget ({only}default: "
                                  f"{DEFAULT_GITHUB_RATE_LIMIT}, as GitHub's)")
    for name, help_text in (("query", "run a SQL query against a running server"),
                            ("explain", "show how a query would be fetched: API calls, pushdown, bind joins")):
        q = command(name, help_text)
        q.add_argument("sql", help="the SQL text (one statement; quote it for the shell), or - to read it from stdin")
        _client_options(q)
        q.add_argument("--max-staleness-ms", type=_milliseconds, metavar="MS",
                       help="accept cached data up to this old (default: the server's, 0 in the demo: live)")
        q.add_argument("--allow-stale", action="store_true",
                       help="when a fresh fetch fails, accept an older cached copy (default: off)")
        q.set_defaults(func=_lazy("cmd_query"))
    tables = command("tables", "list the tables this token may read (Flight SQL GetTables)")
    tables.add_argument("--schema", help="only this schema, e.g. jira (default: every schema)")
    _client_options(tables)
    tables.set_defaults(func=_lazy("cmd_tables"))
    describe = command("describe", "list a table's columns and their SQL types")
    describe.add_argument("table", help="schema.table, e.g. jira.issues (or just the table name if unique)")
    _client_options(describe)
    describe.set_defaults(func=_lazy("cmd_describe"))
    config = command("config", "work with a tenant config file")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", formatter_class=HelpFormatter,
                                  help="validate a tenant YAML and probe each connector's credentials once",
                                  description="validate a tenant YAML (every problem, with its line) and probe "
                                              "each connector's base URL and credentials with one request")
    check.add_argument("file", help="the tenant YAML")
    check.add_argument("--no-probe", action="store_true",
                       help="only validate the file; send no request upstream (default: off, probe)")
    check.set_defaults(func=_lazy_config("cmd_config_check"))
    schema = config_sub.add_parser("schema", formatter_class=HelpFormatter,
                                   help="print the tenant config's JSON Schema (for editors)")
    schema.set_defaults(func=_lazy_config("cmd_config_schema"))
    _connector_command(command("connector", "work with a connector manifest (a YAML-declared app)"))
    return parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # OMNISQL_LOG_LEVEL, in any case


def _tolerant_streams() -> None:
    """On a terminal or locale that is not UTF-8 (``LANG=en_US.ISO-8859-1``, ``PYTHONIOENCODING=ascii``), a
    character the encoding lacks is printed as ``?`` instead of ending the command with a traceback (the json
    format escapes such characters instead, losslessly)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not utf8(stream):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="replace")


def utf8(stream: TextIO) -> bool:
    """Whether ``stream`` writes UTF-8 (so every character can be printed as it is)."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"
    except LookupError:
        return False


def main(argv: list[str] | None = None) -> int:
    # gRPC's C core logs to stderr on its own (a taken port, a failed TLS handshake) beside the sentence we print
    # about the same thing: quiet unless asked for (GRPC_VERBOSITY=..., or OMNISQL_LOG_LEVEL=DEBUG).
    if os.environ.get("OMNISQL_LOG_LEVEL", "").upper() != "DEBUG":
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    _tolerant_streams()
    level = os.environ.get("OMNISQL_LOG_LEVEL", "").strip().upper() or "WARNING"
    if level not in LOG_LEVELS:
        print(f"omnisql: OMNISQL_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not "
              f"{os.environ['OMNISQL_LOG_LEVEL']!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except BrokenPipeError:  # `omnisql ... | head`: the reader has what it wanted, which is not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a query (a query's own handler cancels it on the server)
        print("omnisql: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
