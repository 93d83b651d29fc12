"""Every tenant-file snippet in the README is a valid tenant file (issue #11: the README tells the truth): each
``yaml`` block — except the connector manifest of *Writing a manifest*, which ``tests/test_manifest.py`` checks —
is loaded by the real ``load_config`` on top of a minimal tenant, with every ``*_env`` variable it names set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flight_server.config import load_config
from tests.conftest import ROOT

MINIMAL = {"principals": "principals:\n  - {user: admin, token_env: RC_ADMIN}\n",
           "connectors": "connectors:\n  github: {org: acme, token_env: RC_GH}\n"}


def tenant_snippets() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    found, section = [], ""
    for part in re.split(r"^(#+ .*)$", readme, flags=re.MULTILINE):
        if part.startswith("#"):
            section = part
            continue
        found += [(section, block) for block in re.findall(r"```yaml\n(.*?)```", part, re.DOTALL)
                  if section != "### Writing a manifest"]
    return found


SNIPPETS = tenant_snippets()


def test_the_readme_has_tenant_snippets() -> None:
    assert len(SNIPPETS) >= 6


@pytest.mark.parametrize(("section", "snippet"), SNIPPETS, ids=[f"{i}-{s.strip('# ')[:30]}"
                                                               for i, (s, _) in enumerate(SNIPPETS)])
def test_a_readme_snippet_is_a_valid_tenant_file(section: str, snippet: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in {"RC_ADMIN", "RC_GH", *re.findall(r"_env:\s*([A-Z][A-Z0-9_]*)", snippet)}:
        monkeypatch.setenv(name, "redis://redis:6379/0" if "REDIS" in name else "secret-value")
    snippet = snippet.replace("/etc/omnisql/manifests", str(ROOT / "tests" / "manifests"))  # where ours are
    top = {line.split(":", 1)[0] for line in snippet.splitlines() if re.match(r"[a-z_]+:", line)}
    text = snippet + "".join(block for key, block in MINIMAL.items() if key not in top)
    path = tmp_path / "tenant.yaml"
    path.write_text(text)
    load_config(path)
