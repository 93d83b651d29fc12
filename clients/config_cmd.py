"""``omnisql config check FILE`` and ``omnisql config schema``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["cmd_config_check", "cmd_config_schema"]


def cmd_config_check(args: argparse.Namespace) -> int:
    """0: the file is valid and every connector answered; 1: a probe failed; 2: the file is wrong."""
    from flight_server.config import ConfigError
    from flight_server.config_check import check_file

    try:
        report = check_file(args.file, probe_upstream=not args.no_probe)
    except ConfigError as exc:
        print(f"omnisql config check: {exc}", file=sys.stderr)
        return 2
    config = report.config
    connectors = ", ".join(f"{c.name} ({c.type})" for c in config.connector_configs()) or "none"
    print(f"{args.file}: valid — listens on {config.host}:{config.port}, connectors: {connectors}, "
          f"{len(config.principals)} static principal(s){', JWT identity' if config.jwt else ''}")
    for note in report.notes:
        print(f"  note: {note}")
    failed = 0
    for probe in report.probes:
        print(f"  {'ok ' if probe.ok else 'FAIL'} {probe.connector}: {probe.message}")
        failed += not probe.ok
    if failed:
        print(f"omnisql config check: {failed} connector(s) failed their probe", file=sys.stderr)
    return 1 if failed else 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from flight_server.tenant_schema import SCHEMA_PATH

    sys.stdout.write(SCHEMA_PATH.read_text())
    return 0
