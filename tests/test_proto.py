"""The committed generated protobuf modules are exactly what regeneration produces."""

from __future__ import annotations

from pathlib import Path

from flight_server.proto.regenerate import HERE, PROTOS, generate


def test_generated_module_is_current(tmp_path: Path) -> None:
    generate(tmp_path)
    names = [proto.replace(".proto", suffix) for proto in PROTOS for suffix in ("_pb2.py", "_pb2.pyi")]
    for name in names:
        fresh = (tmp_path / name).read_text()
        assert fresh == (HERE / name).read_text(), f"{name} is stale: run python -m flight_server.proto.regenerate"
