"""The committed generated protobuf module is exactly what regeneration produces."""

from __future__ import annotations

from pathlib import Path

from flight_server.proto.regenerate import HERE, generate


def test_generated_module_is_current(tmp_path: Path) -> None:
    generate(tmp_path)
    for name in ("flight_sql_pb2.py", "flight_sql_pb2.pyi"):
        fresh = (tmp_path / name).read_text()
        assert fresh == (HERE / name).read_text(), f"{name} is stale: run python -m flight_server.proto.regenerate"
