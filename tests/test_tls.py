"""TLS: ``serve --tls-cert/--tls-key`` speaks grpc+tls://, and real clients connect by trusting its CA."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest
import trustme

from clients.flight_client import run_query
from tests.conftest import ROOT, launch_demo


@pytest.fixture(scope="module")
def tls_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = directory / "server.pem", directory / "server.key", directory / "ca.pem"
    server_cert.private_key_pem.write_to_path(str(key))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    with launch_demo(directory, "--tls-cert", str(cert), "--tls-key", str(key)) as info:
        yield info, ca_file


def test_adbc_over_tls(tls_demo: tuple[dict[str, Any], Path]) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    info, ca_file = tls_demo
    assert info["flight_uri"].startswith("grpc+tls://127.0.0.1:")
    with flightsql.connect(info["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {info['tokens']['token_admin']}",
            "adbc.flight.sql.client_option.tls_root_certs": ca_file.read_text()}) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jira.issues WHERE team = ?", ("web",))
        row = cursor.fetchone()
        assert row is not None and row[0] > 0


def test_pyarrow_and_cli_over_tls(tls_demo: tuple[dict[str, Any], Path]) -> None:
    info, ca_file = tls_demo
    token = info["tokens"]["token_admin"]
    assert run_query(info["flight_uri"], token, "SELECT 1 AS x", tls_root_certs=ca_file.read_bytes()).num_rows == 1
    done = subprocess.run([sys.executable, "-m", "clients.cli", "query", "SELECT 2 AS y", "--uri", info["flight_uri"],
                           "--token", token, "--tls-root-certs", str(ca_file)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "(1 row)" in done.stdout, done.stderr


def test_untrusted_or_plaintext_clients_cannot_connect(tls_demo: tuple[dict[str, Any], Path]) -> None:
    info, _ = tls_demo
    token = info["tokens"]["token_admin"]
    with pytest.raises(flight.FlightUnavailableError):  # the system roots do not know our CA
        run_query(info["flight_uri"], token, "SELECT 1")
    with pytest.raises(flight.FlightUnavailableError):
        run_query(info["flight_uri"].replace("grpc+tls://", "grpc://"), token, "SELECT 1")
