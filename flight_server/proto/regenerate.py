"""Regenerate ``flight_sql_pb2.py`` from ``flight_sql.proto`` with grpcio-tools (pinned in the test extras)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent


def generate(out_dir: Path) -> Path:
    from grpc_tools import protoc

    args = ["protoc", f"-I{HERE}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", str(HERE / "flight_sql.proto")]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    return out_dir / "flight_sql_pb2.py"


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
