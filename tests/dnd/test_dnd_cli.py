"""`legato dnd import|check|status` through Typer's runner, on both databases."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from legato.cli.main import app

from .conftest import write_lines

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr with Rich's wrapping and box lines flattened."""
    result = runner.invoke(app, ["dnd", *args], env=env)
    flat = " ".join(result.stderr.replace("│", " ").split())
    return result.exit_code, result.stdout, flat


def test_import_then_check_json(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "ncpr.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write("number,categories\n+919811000001,1;3\n+919811000002\n+919811000001\n")
    code, out, _ = invoke("import", str(path), "--db", db_url)
    assert code == 0, out
    assert "accepted" in out and "duplicate" in out and "version" in out
    code, out, _ = invoke("check", "+919811000001", "--category", "2", "--json", "--db", db_url)
    assert code == 0
    answer = json.loads(out)
    assert answer["number"] == "+919811000001"
    assert answer["dnd"] is True  # the duplicate line without categories blocks fully
    assert answer["categories"] == [1, 2, 3, 4, 5, 6, 7] and answer["version"] == 1
    code, out, _ = invoke("check", "+919811000009", "--json", "--db", db_url)
    assert json.loads(out)["dnd"] is False and json.loads(out)["registered"] is False


def test_categories_transactional_and_env_database(db_url: str, tmp_path: Path) -> None:
    env = {"LEGATO_DB": db_url}
    assert (
        invoke("import", str(write_lines(tmp_path / "a.csv", ["+919811000001,4"])), env=env)[0] == 0
    )

    def dnd(*args: str) -> bool:
        code, out, err = invoke("check", "+919811000001", "--json", *args, env=env)
        assert code == 0, err
        return bool(json.loads(out)["dnd"])

    assert dnd("--category", "4") and not dnd("--category", "5") and dnd()
    assert not dnd("--transactional")
    assert dnd("--transactional", "--transactional-policy", "block")
    code, out, _ = invoke("check", "+919811000001", env=env)
    assert code == 0 and "DND" in out and "categories 4" in out


def test_import_json_add_remove_and_status(db_url: str, tmp_path: Path) -> None:
    base = write_lines(tmp_path / "v1.txt", ["+919811000001", "+919811000002"])
    assert invoke("import", str(base), "--db", db_url)[0] == 0
    code, out, _ = invoke(
        "import",
        str(write_lines(tmp_path / "add.txt", ["+919811000003"])),
        "--add",
        "--json",
        "--db",
        db_url,
    )
    assert code == 0
    summary = json.loads(out)
    assert (summary["mode"], summary["inserted"], summary["numbers"]) == ("add", 1, 3)
    code, out, _ = invoke(
        "import",
        str(write_lines(tmp_path / "rm.txt", ["+919811000001"])),
        "--remove",
        "--json",
        "--db",
        db_url,
    )
    assert code == 0 and json.loads(out)["removed"] == 1
    code, out, _ = invoke("status", "--json", "--db", db_url)
    status = json.loads(out)
    assert status["current"]["version"] == 1 and status["current"]["numbers"] == 2
    assert status["current"]["changes"] == 2
    assert invoke("status", "--db", db_url)[0] == 0


def test_invalid_file_exits_2_names_lines_and_changes_nothing(db_url: str, tmp_path: Path) -> None:
    first = write_lines(tmp_path / "v1.txt", ["+919811000001"])
    assert invoke("import", str(first), "--db", db_url)[0] == 0
    bad = write_lines(tmp_path / "bad.txt", ["+919811000002", "98110", "+919811000003,12"])
    code, _, err = invoke("import", str(bad), "--db", db_url)
    assert code == 2
    assert "2 invalid line(s)" in err and "not changed" in err
    assert "must start with '+'" in err and "category '12'" in err
    code, out, _ = invoke("check", "+919811000002", "--json", "--db", db_url)
    assert json.loads(out)["dnd"] is False and json.loads(out)["version"] == 1
    code, out, _ = invoke("import", str(bad), "--max-invalid", "2", "--json", "--db", db_url)
    assert code == 0
    summary = json.loads(out)
    assert (summary["accepted"], summary["invalid"], summary["version"]) == (1, 2, 2)
    assert [bad["line"] for bad in summary["invalid_lines"]] == [2, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["check", "9811000001"],
            "NUMBER: number must be '+' followed by 8 to 15 digits (the first not 0)",
        ),
        (["check", "+919811000001", "--category", "2", "--transactional"], "one or the other"),
        (["check", "+919811000001", "--category", "8"], "--category"),
        (["import", "/nonexistent/file.txt"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error(
    args: list[str], message: str, tmp_path: Path
) -> None:
    code, out, err = invoke(*args, "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2
    assert message in err + " ".join(out.replace("│", " ").split())


def test_check_before_import_explains(tmp_path: Path) -> None:
    code, _, err = invoke("check", "+919811000001", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 1 and "no DND registry imported yet" in err
    code, out, _ = invoke("status", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 0 and "No DND registry imported yet" in out
