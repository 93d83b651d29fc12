"""``omnisql serve``: the tenant file is the truth and only the flags the user passed override it (issue #11).
Every serve flag's help names the tenant key it overrides; ``NO_TENANT_KEY`` says why the few without one have
none (``tests/test_serve_options.py`` holds both to the README)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_GITHUB_RATE_LIMIT", "DEFAULT_HOST", "DEFAULT_HTTP_PORT", "DEFAULT_PORT", "LIMIT_FLAGS",
           "NO_DEMO", "NO_TENANT_KEY", "ServeSettings", "cmd_serve", "demo_launcher", "http_settings",
           "listen_overrides", "serve_settings", "source_checkout", "wait_forever", "write_info"]

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8815
DEFAULT_HTTP_PORT = 8001
DEFAULT_GITHUB_RATE_LIMIT = 5000  # the sandbox GitHub's hourly budget, as GitHub's

# ``serve`` flags that no tenant key stands behind, and why (the README's "Flags without a tenant key").
NO_TENANT_KEY = {
    "--demo": "a mode, not a setting: the demo serves its own tenant, with no file",
    "--config": "names the tenant file itself",
    "--info-file": "where this one run reports its address to a script; the tenant's file has no run to report",
    "--github-rate-limit": "the sandbox GitHub's budget (demo only); a real GitHub sets its own",
}

# ``serve`` flags for the tenant config's limit keys (flight_server/limits.py): key → (size or n, help).
LIMIT_FLAGS = {
    "duckdb_memory_limit": ("size", "memory DuckDB may use for all queries together, e.g. 4GiB; default a "
                                    "quarter of RAM"),
    "max_result_bytes": ("size", "the largest result one query may return; default 512MiB"),
    "max_api_calls_per_query": ("n", "refuse a query estimated to make more API calls; default 5000"),
    "max_fetch_bytes_per_query": ("size", "the rows (Arrow bytes) one query's scans may bring in, counted as they "
                                          "arrive; default 1GiB"),
    "max_concurrent_queries": ("n", "queries planned or run at once, all principals; default 16"),
    "max_concurrent_queries_per_principal": ("n", "queries one principal may plan or run at once; default 4"),
    "max_prepared_statements_per_principal": ("n", "open prepared statements per principal; more closes its "
                                                   "least recently used; default 100"),
    "max_upload_bytes": ("size", "the largest DoPut (bound parameters), e.g. 16MiB; default 16MiB"),
}

NO_DEMO = ("the demo runs from a source checkout of OmniSQL (the sandbox is not part of the installed product): "
           "run `make demo` there")


@dataclass(frozen=True)
class ServeSettings:
    """What ``serve`` runs with: the file's values, with the flags given on top."""

    config: Any  # TenantConfig (imported lazily: the client commands never load the server)
    http: Any  # HttpSettings, or None: no HTTP
    trace_exporter: str
    workers: int


def serve_settings(config: Any, args: argparse.Namespace, launcher: Any = None) -> ServeSettings:
    """``config`` with only the flags the user passed applied (GovernanceError when one is out of range)."""
    from flight_server.governance import apply_serve_flags

    config = listen_overrides(config, args)
    if args.query_deadline_s is not None:
        config = dataclasses.replace(config, deadline_s=args.query_deadline_s)
    overrides = {key: value for key in LIMIT_FLAGS if (value := getattr(args, key)) is not None}
    if overrides:
        config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, **overrides))
    config = apply_serve_flags(config, args)  # --redis, --cache-*, --default-max-staleness-ms, --rate-limit-*
    return ServeSettings(config, http_settings(args, config, launcher), args.trace_exporter or config.trace_exporter,
                         config.workers if args.workers is None else args.workers)


def http_settings(args: argparse.Namespace, config: Any, launcher: Any) -> Any:
    """The HTTP gateway's settings from ``--http-port``/``--no-http``/``--http-max-rows``, else the config's
    ``listen.http_port`` (None: no gateway) and ``http_max_rows``; the demo's console also gets a token picker and
    the seed's queries."""
    from flight_server.gateway.state import HttpSettings

    port = config.http_port if args.http_port is None else args.http_port
    if args.no_http or port is None:
        return None
    tokens, templates = {}, {}
    if launcher is not None:
        tokens = {key.removeprefix("token_"): token for key, token in launcher.demo_tokens().items()}
        templates = dict(launcher.SEED_QUERIES)
    max_rows = config.http_max_rows if args.http_max_rows is None else args.http_max_rows
    return HttpSettings(port=port, max_rows=max_rows, demo_tokens=tokens, templates=templates)


def listen_overrides(config: Any, args: argparse.Namespace) -> Any:
    """The tenant's ``listen`` section with only the flags the user passed on top (``--host``, ``--port``,
    ``--tls-cert``, ``--tls-key``): a flag left out never resets what the file says."""
    given = {key: value for key, value in (("host", args.host), ("port", args.port), ("tls_cert_file", args.tls_cert),
                                           ("tls_key_file", args.tls_key)) if value is not None}
    return dataclasses.replace(config, **given) if given else config


def demo_launcher() -> Any:
    """The demo launcher (``demo/``), or None where only the product is installed. ``.venv/bin/omnisql`` of an
    editable install (``make install``) runs with the script's directory on ``sys.path``, not the checkout, so
    the checkout that holds this very file is put there when it has ``demo/`` and ``sandbox/``: ``omnisql serve
    --demo`` and ``omnisql sandbox`` work from the checkout as ``python -m clients.cli`` does."""
    checkout = source_checkout()
    if checkout is not None and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        import demo.launch
    except ImportError:
        return None
    return demo.launch


def source_checkout() -> Path | None:
    """The source checkout this ``clients`` package runs from (it has ``demo/launch.py`` and ``sandbox/``), or
    None for an installed wheel."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "demo" / "launch.py").is_file() and (root / "sandbox").is_dir() else None


def write_info(path: str | None, info: dict[str, Any]) -> None:
    if path:
        tmp = Path(path).with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)  # atomic: a reader never sees half a file


def wait_forever() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any] | str:
    """(sandbox, config, launcher), or the message to exit 2 with."""
    from flight_server.config import ConfigError, load_config

    if args.demo and args.config:
        return "give --demo or --config, not both (the demo serves its own tenant)"
    if args.github_rate_limit is not None and not args.demo:
        return "--github-rate-limit sets the sandbox GitHub's budget (with --demo); a tenant file's GitHub sets its own"
    if args.demo:
        launcher = demo_launcher()
        if launcher is None:
            return f"--demo: {NO_DEMO}"
        sandbox, config = launcher.start_demo(args.host or DEFAULT_HOST, DEFAULT_PORT if args.port is None else
                                              args.port, args.github_rate_limit or DEFAULT_GITHUB_RATE_LIMIT)
        return sandbox, config, launcher
    if not args.config:
        return "give --demo, or --config PATH (a tenant YAML file; see README)"
    try:
        return None, load_config(args.config), None
    except ConfigError as exc:
        return str(exc)


_GRPC_ADVICE = re.compile(r";? *set GRPC_VERBOSITY=\S+ environment variable to see detailed error message\.?")


def cmd_serve(args: argparse.Namespace) -> int:
    from flight_server.app import start_service
    from flight_server.config import ConfigError
    from flight_server.governance import GovernanceError

    loaded = _load(args)
    if isinstance(loaded, str):
        print(f"omnisql serve: {loaded}", file=sys.stderr)
        return 2
    sandbox, config, launcher = loaded
    try:
        settings = serve_settings(config, args, launcher)
        if settings.workers > 1:  # one process per core on one port (flight_server/workers.py)
            from flight_server.workers import start_workers

            service: Any = start_workers(settings.config, settings.workers, settings.http, settings.trace_exporter)
        else:
            service = start_service(settings.config, settings.http, settings.trace_exporter)
    except (GovernanceError, ConfigError, OSError) as exc:
        # gRPC's own advice (GRPC_VERBOSITY) is about gRPC's logs, not about what the user should do
        message = _GRPC_ADVICE.sub("", str(exc))
        # the limits' checker names a flag as its key path (--rate-limit.burst): say it as typed (--rate-limit-burst)
        message = re.sub(r"--rate-limit\.(\w+)", lambda m: "--rate-limit-" + m[1].replace("_", "-"), message)
        print(f"omnisql serve: {message}", file=sys.stderr)
        if sandbox:
            sandbox.stop()
        return 2
    info: dict[str, Any] = {"flight_uri": service.uri, "pid": os.getpid()}
    if service.http_url:
        info["http_url"] = service.http_url
    if launcher is not None:
        info["tokens"] = launcher.demo_tokens()
        info["sandbox"] = sandbox.info()
        print(launcher.banner(service.uri, sandbox, service.http_url))
    else:
        print(f"OmniSQL is serving Flight SQL at {service.uri}")
        if service.http_url:
            print(f"HTTP API, web console and /metrics at {service.http_url}/")
    sys.stdout.flush()
    write_info(args.info_file, info)
    wait_forever()
    service.stop()
    if sandbox:
        sandbox.stop()
    return 0
