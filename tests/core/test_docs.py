"""The generated reference docs match the code tables they are rendered from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from legato import docsgen
from legato.core.catalogue import CATALOGUE
from legato.core.causes import SIP_RESPONSES

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(docsgen.DOCS))
def test_committed_doc_is_fresh(name: str) -> None:
    committed = (DOCS_DIR / name).read_text(encoding="utf-8")
    assert committed == docsgen.DOCS[name](), (
        f"docs/{name} is stale: run `python -m legato.docsgen` and commit the result"
    )


def test_statuses_doc_has_every_code_once() -> None:
    text = docsgen.render_statuses()
    assert "python -m legato.docsgen" in text.splitlines()[2]
    for row in CATALOGUE:
        assert text.count(f"| `{row.code.value}` |") == 1
    assert "| `MAX-USE` | incoming | yes |" in text


def test_causes_doc_has_every_code_and_cause() -> None:
    text = docsgen.render_causes()
    for code in SIP_RESPONSES:
        assert text.count(f"\n| {code} | {SIP_RESPONSES[code]} |") == 1
    causes_section = text.split("\n## Q.850", 1)[1]
    for cause in range(1, 128):
        assert causes_section.count(f"\n| {cause} | ") == 1
    assert "| 486 | Busy Here | BUSY | DESIGN §3 | 17 User busy | RFC 3398 |" in text
    assert "| 20 | Subscriber absent | FAILED |" in text


def test_check_detects_stale_and_write_repairs(tmp_path: Path) -> None:
    assert docsgen.main(["--check", "--docs-dir", str(tmp_path)]) == 1  # missing files
    assert docsgen.main(["--docs-dir", str(tmp_path)]) == 0
    assert docsgen.main(["--check", "--docs-dir", str(tmp_path)]) == 0
    causes = tmp_path / "causes.md"
    causes.write_text(causes.read_text(encoding="utf-8").replace("BUSY", "FAILED", 1))
    assert docsgen.stale(tmp_path) == [causes]
    assert docsgen.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert docsgen.write(tmp_path) == [causes]
    assert docsgen.stale(tmp_path) == []


def test_module_entry_point_checks_the_repository_docs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "legato.docsgen", "--check"],
        cwd=DOCS_DIR.parent, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
