"""The README's Quickstart runs as written: its code blocks are taken from README.md verbatim and run against a
demo, the Python ones with ``.venv/bin/python`` and the shell ones with bash from the checkout, as the README says
(after ``make demo`` or ``make test``, ``.venv`` holds the product and the ADBC client). The only change is the
address: the test's demo listens on a free port, so ``grpc://127.0.0.1:8815`` in the Python blocks is replaced by
it, and the shell blocks get it through ``OMNISQL_URI`` (which the README documents). The block of ``make``
commands is the one not run (it would start a demo and the test suite)."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import pytest

from sandbox.seed import build_seed
from tests.conftest import ROOT

DEFAULT_URI = "grpc://127.0.0.1:8815"


def quickstart_blocks() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return [(lang, code) for lang, code in re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)]


def runnable() -> list[tuple[str, str]]:
    blocks = [(lang, code) for lang, code in quickstart_blocks()
              if not all(line.startswith("make ") for line in code.strip().splitlines())]
    assert len(quickstart_blocks()) - len(blocks) == 1  # only the `make demo` / `make test` block is left out
    return blocks


def test_the_quickstart_has_what_a_newcomer_needs() -> None:
    langs = [lang for lang, _ in runnable()]
    assert langs == ["python", "python", "sh"]


@pytest.mark.parametrize("index", range(3))
def test_quickstart_block_runs_as_written(demo: dict[str, Any], index: int) -> None:
    lang, code = runnable()[index]
    venv_python = ROOT / ".venv" / "bin" / "python"
    assert venv_python.exists(), "run `make demo` or `make test` first: the README runs everything from .venv"
    if lang == "python":
        assert DEFAULT_URI in code
        done = subprocess.run([str(venv_python), "-"], input=code.replace(DEFAULT_URI, demo["flight_uri"]),
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    else:
        env = {**os.environ, "OMNISQL_URI": demo["flight_uri"]}
        env.pop("OMNISQL_TOKEN", None)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env=env)
    assert done.returncode == 0, f"{code}\n--- stderr:\n{done.stderr}"
    assert done.stderr == "", done.stderr  # as written it prints its answer and nothing else: no warning, no note
    out = done.stdout
    if "adbc_driver_flightsql" in code:
        assert "merged: int64" in out and "web-frontend" in out
    elif "pyarrow.flight" in code:
        assert "issue_key: string" in out and "status: string" in out
    else:
        issues = len(build_seed().issues)
        assert out.rstrip().endswith(f"\n{issues}")  # the arrow pipe counted every issue
        assert re.search(r"github +\| pull_requests", out) and "story_points" in out and "strategy:" in out
        assert "issue_key,status\n" in out


def makefile_targets() -> dict[str, tuple[list[str], list[str]]]:
    """target → (prerequisites, recipe lines) of the Makefile."""
    targets: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current is not None:
            targets[current][1].append(line.strip())
        elif (match := re.match(r"^([\w$().\-/]+):(?!=)([^#]*)", line)) and not line.startswith("."):
            current = match[1]
            targets[current] = (match[2].split(), [])
    return targets


def test_every_make_target_installs_the_tools_it_runs() -> None:
    """``make lint`` after ``make demo`` (a fresh checkout's first steps) ran ``.venv/bin/ruff``, which only the
    test extras install: each target that runs ruff, mypy or pytest must install them first."""
    targets = makefile_targets()

    def recipe(target: str) -> list[str]:
        prerequisites, lines = targets.get(target, ([], []))
        return [line for p in prerequisites for line in recipe(p)] + lines

    for target in targets:
        lines = recipe(target)
        for tool in ("/ruff ", "/mypy ", "-m pytest "):
            using = next((i for i, line in enumerate(lines) if tool in line), None)
            if using is not None:
                assert any("pip install" in line and ".[test" in line for line in lines[:using]), (target, tool)


def test_make_demo_passes_args_to_serve() -> None:
    """The README's way out when 8815 or 8001 is taken: ``make demo ARGS='...'``."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under make test
    done = subprocess.run(["make", "--no-print-directory", "-n", "demo", "ARGS=--port 8816 --http-port 8002"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == ".venv/bin/python -m clients.cli serve --demo --port 8816 --http-port 8002"
    assert "make demo ARGS='--port 8816 --http-port 8002'" in (ROOT / "README.md").read_text()
