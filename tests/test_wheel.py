"""The installed product (``pip install .``, as the Dockerfile does) carries every file it reads at run time: the
web console's static files, the OpenAPI document, the tenant and manifest JSON Schemas, the shipped manifests and
the protos — built as a wheel and compared with what git tracks in the product's packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("core", "flight_server", "planner", "connectors", "security", "clients")


def test_the_wheel_holds_every_data_file_of_the_product(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           "--wheel-dir", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("omnisql-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    data = {name for name in tracked if not name.endswith((".py", ".pyi"))}
    assert data >= {"flight_server/gateway/static/index.html", "flight_server/gateway/openapi.json",
                    "flight_server/tenant.schema.json"}
    assert data - names == set()
