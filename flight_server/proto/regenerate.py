"""Regenerate ``flight_pb2.py`` and ``flight_sql_pb2.py`` from our ``.proto`` files with grpcio-tools (pinned in the
test extras)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent


PROTOS = ("flight.proto", "flight_sql.proto")


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc

    for proto in PROTOS:
        args = ["protoc", f"-I{HERE}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", str(HERE / proto)]
        code = protoc.main(args)
        if code != 0:
            raise RuntimeError(f"protoc failed on {proto} with exit code {code}")
    return [out_dir / proto.replace(".proto", "_pb2.py") for proto in PROTOS]


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
