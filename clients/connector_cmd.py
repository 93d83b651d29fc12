"""``omnisql connector check FILE``: is this manifest right, and does it reach its API?"""

from __future__ import annotations

import argparse
import difflib
import sys

__all__ = ["Usage", "cmd_connector_check"]


class Usage(Exception):
    """A flag's value is malformed: exit 2, as argparse's own usage errors."""


def _pairs(values: list[str] | None, flag: str, shape: str) -> dict[str, str]:
    out = {}
    for value in values or ():
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise Usage(f"{flag} takes {shape}, not {value!r}")
        out[name] = rest
    return out


def cmd_connector_check(args: argparse.Namespace) -> int:
    """0: valid and the dry run returned rows (or --no-probe); 1: the dry run failed; 2: the manifest is wrong."""
    from clients.render import render_table
    from flight_server.connector_check import ManifestError, OmniSQLError, describe_tables, dry_run, load_for_check

    try:
        manifest, connector, why = load_for_check(args.file, args.base_url,
                                                  _pairs(args.secret_env, "--secret-env", "NAME=VAR"),
                                                  _pairs(args.var, "--var", "NAME=VALUE"), args.auth)
    except (ManifestError, Usage) as exc:
        print(f"omnisql connector check: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:  # a binary file, or one saved as Latin-1 / UTF-16
        print(f"omnisql connector check: {args.file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
              f"{exc.start}); save the file as UTF-8", file=sys.stderr)
        return 2
    print(f"{args.file}: valid manifest {manifest.name!r} ({len(manifest.tables)} table"
          f"{'s' if len(manifest.tables) != 1 else ''}, base_url {manifest.base_url})")
    for line in describe_tables(manifest):
        print(line)
    names = [t.name for t in manifest.tables]
    table = args.table or names[0]
    if table not in names:
        close = difflib.get_close_matches(table, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        print(f"omnisql connector check: --table: no table {table!r} in the manifest; {hint}(tables: "
              f"{', '.join(names)})", file=sys.stderr)
        return 2
    if args.no_probe:
        return 0
    if connector is None:
        print(f"omnisql connector check: no dry run: {why}", file=sys.stderr)
        return 1
    try:
        result = dry_run(connector, table, rows=args.rows)
    except OmniSQLError as exc:
        print(f"omnisql connector check: dry run of {table} failed: {exc}", file=sys.stderr)
        return 1
    budget = f"; rate limit: {result.rate_limit_remaining} requests left" if result.rate_limit_remaining is not None \
        else ""
    auth = connector.config.auth.type if connector.config.auth else "none"
    print(f"dry run: {connector.config.base_url} {table} -> {result.rows.num_rows} rows from {result.api_calls} "
          f"request(s) in {result.seconds:.2f} s (auth: {auth}{budget})")
    print(render_table(result.rows, result.rows.num_rows))
    return 0
