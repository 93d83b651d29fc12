"""The committed generated protobuf module is exactly what regeneration produces."""

from __future__ import annotations

from pathlib import Path

from flight_server.proto.regenerate import HERE, generate


def test_generated_module_is_current(tmp_path: Path) -> None:
    fresh = generate(tmp_path).read_text()
    assert fresh == (HERE / "flight_sql_pb2.py").read_text(), "run: python -m flight_server.proto.regenerate"
