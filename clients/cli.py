"""The ``omnisql`` command: serve (demo or tenant config), sandbox, query, explain."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _write_info(path: str | None, info: dict[str, Any]) -> None:
    if path:
        tmp = Path(path).with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)  # atomic: a reader never sees half a file


def _wait_forever() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()


_NO_DEMO = ("the demo runs from a source checkout of OmniSQL (the sandbox is not part of the installed product): "
            "run `make demo` there")


def _demo() -> Any:
    """The demo launcher (``demo/``), or None where only the product is installed."""
    try:
        import demo.launch
    except ImportError:
        return None
    return demo.launch


def cmd_serve(args: argparse.Namespace) -> int:
    from flight_server.app import start_service
    from flight_server.config import ConfigError, load_config
    from flight_server.governance import GovernanceError, apply_serve_flags

    sandbox = None
    launcher = _demo() if args.demo else None
    if args.demo:
        if launcher is None:
            print(f"omnisql serve --demo: {_NO_DEMO}", file=sys.stderr)
            return 2
        sandbox, config = launcher.start_demo(args.host, args.port, args.github_rate_limit)
    else:
        if not args.config:
            print("omnisql serve: give --demo, or --config PATH (a tenant YAML file; see README)", file=sys.stderr)
            return 2
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"omnisql serve: {exc}", file=sys.stderr)
            return 2
        if args.port is not None:
            config = dataclasses.replace(config, port=args.port, host=args.host)
    if args.tls_cert or args.tls_key:
        config = dataclasses.replace(config, tls_cert_file=args.tls_cert, tls_key_file=args.tls_key)
    if args.query_deadline_s is not None:
        config = dataclasses.replace(config, deadline_s=args.query_deadline_s)
    overrides = {key: value for key in LIMIT_FLAGS if (value := getattr(args, key)) is not None}
    if overrides:
        config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, **overrides))
    try:  # --redis, --cache-max-bytes, --default-max-staleness-ms, --rate-limit-* (flight_server/governance.py)
        config = apply_serve_flags(config, args)
    except GovernanceError as exc:
        print(f"omnisql serve: {exc}", file=sys.stderr)
        if sandbox:
            sandbox.stop()
        return 2
    try:
        service = start_service(config)
    except (ConfigError, OSError) as exc:
        print(f"omnisql serve: {exc}", file=sys.stderr)
        if sandbox:
            sandbox.stop()
        return 2
    info: dict[str, Any] = {"flight_uri": service.uri, "pid": os.getpid()}
    if sandbox is not None and launcher is not None:
        info["tokens"] = launcher.demo_tokens()
        info["sandbox"] = sandbox.info()
        print(launcher.banner(service.uri, sandbox))
    else:
        print(f"OmniSQL is serving Flight SQL at {service.uri}")
    sys.stdout.flush()
    _write_info(args.info_file, info)
    _wait_forever()
    service.stop()
    if sandbox:
        sandbox.stop()
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    launcher = _demo()
    if launcher is None:
        print(f"omnisql sandbox: {_NO_DEMO}", file=sys.stderr)
        return 2
    sandbox = launcher.start_sandbox(host=args.host, github_rate_limit=args.github_rate_limit)
    print(json.dumps(sandbox.info(), indent=2))
    sys.stdout.flush()
    _write_info(args.info_file, {"sandbox": sandbox.info()})
    _wait_forever()
    sandbox.stop()
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.flight as flight

    from clients.flight_client import run_query
    from clients.render import json_rows, render_table, render_vertical

    sql = ("EXPLAIN " if args.command == "explain" else "") + args.sql
    try:
        roots = Path(args.tls_root_certs).read_bytes() if args.tls_root_certs else None
    except OSError as exc:
        print(f"error: cannot read --tls-root-certs: {exc}", file=sys.stderr)
        return 2
    try:
        table = run_query(args.uri, args.token, sql, tls_root_certs=roots)
    except (flight.FlightError, pa.ArrowException) as exc:  # INVALID_ARGUMENT arrives as ArrowInvalid
        # pyarrow prefixes "Flight returned <status> error, with message: "; the server's message follows.
        print(f"error: {str(exc).split('with message: ', 1)[-1].strip()}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(json_rows(table.slice(0, args.max_rows)), default=str, indent=2))
    elif sql.lstrip().upper().startswith("EXPLAIN"):
        print(render_vertical(table, args.max_rows))
    else:
        print(render_table(table, args.max_rows))
    return 0


# ``serve`` flags for the tenant config's limit keys (flight_server/limits.py): key → (size or n, help).
LIMIT_FLAGS = {
    "duckdb_memory_limit": ("size", "memory DuckDB may use for all queries together, e.g. 4GiB; default a "
                                    "quarter of RAM"),
    "max_result_bytes": ("size", "the largest result one query may return; default 512MiB"),
    "max_api_calls_per_query": ("n", "refuse a query estimated to make more API calls; default 5000"),
    "max_concurrent_queries": ("n", "queries planned or run at once, all principals; default 16"),
    "max_concurrent_queries_per_principal": ("n", "queries one principal may plan or run at once; default 4"),
    "max_prepared_statements_per_principal": ("n", "open prepared statements per principal; more closes its "
                                                   "least recently used; default 100"),
    "max_upload_bytes": ("size", "the largest DoPut (bound parameters), e.g. 16MiB; default 16MiB"),
}


def _size(text: str) -> int:
    from flight_server.limits import LimitError, parse_size

    try:
        return parse_size("the size", text)
    except LimitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnisql", description="SQL over SaaS apps, via Arrow Flight SQL")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Flight SQL server")
    serve.add_argument("--demo", action="store_true", help="start the sandbox and serve the demo tenant")
    serve.add_argument("--config", help="tenant config YAML (without --demo)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="0 picks a free port (default 8815)")
    serve.add_argument("--info-file", help="write connection info as JSON here once ready")
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve grpc+tls:// (with --tls-key)")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument("--query-deadline-s", type=float, default=None,
                       help="stop any query (planning, fetching, DuckDB) after this many seconds "
                            "(overrides query_deadline_s; default 60)")
    for key, (kind, help_text) in LIMIT_FLAGS.items():
        serve.add_argument("--" + key.replace("_", "-"), type=_size if kind == "size" else _count, default=None,
                           metavar=kind.upper(), help=f"{help_text} (overrides {key} of the config)")
    from flight_server.governance import add_serve_flags

    add_serve_flags(serve)
    serve.set_defaults(func=cmd_serve)
    sandbox = sub.add_parser("sandbox", help="run only the GitHub/Jira stand-ins")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--info-file")
    sandbox.set_defaults(func=cmd_sandbox)
    for command in (serve, sandbox):
        command.add_argument("--github-rate-limit", type=int, default=5000,
                             help="the sandbox GitHub's hourly request budget (default 5000, as GitHub's)")
    for name in ("query", "explain"):
        q = sub.add_parser(name, help=f"{name} a SQL query against a running server")
        q.add_argument("sql")
        q.add_argument("--uri", default="grpc://127.0.0.1:8815")
        q.add_argument("--token", default=os.environ.get("OMNISQL_TOKEN", ""))
        q.add_argument("--tls-root-certs", help="PEM of the CA to trust for a grpc+tls:// server")
        q.add_argument("--format", choices=("table", "json"), default="table")
        q.add_argument("--max-rows", type=int, default=50)
        q.set_defaults(func=cmd_query)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("OMNISQL_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "serve" and args.port is None:
        args.port = 8815
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
