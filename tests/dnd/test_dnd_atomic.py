"""A killed import (SIGKILL, in a real subprocess) leaves the previous version usable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, select

from legato.core.policy.dnd import FULLY_BLOCKED
from legato.dnd import DndRegistry
from legato.dnd.parse import write_entries
from legato.dnd.tables import versions

from .conftest import write_lines

BIG = 2_000_000
LEGATO = shutil.which("legato") or str(Path(sys.executable).with_name("legato"))

# Runs an import whose progress hook announces the load phase, then stalls there so the
# test can kill it at a known point: inside the COPY (PostgreSQL) or between committed
# batches (SQLite).
_STALLING_IMPORT = """
import sys, time
from pathlib import Path
from legato.dnd import DndRegistry
def progress(phase, done, total):
    if phase == "load":
        print("LOADING", done, flush=True)
        time.sleep(60)
DndRegistry(sys.argv[1]).import_file(Path(sys.argv[2]), progress=progress)
"""


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dnd") / "big.txt"
    write_entries(path, np.arange(917_000_000_000, 917_000_000_000 + BIG, dtype=np.int64))
    return path


def _previous_version_still_serves(registry: DndRegistry) -> None:
    info = registry.current()
    assert info is not None and info.version == 1 and info.numbers == 2
    assert registry.mask("+919811000001") == FULLY_BLOCKED
    assert registry.mask("+917000000000") is None
    assert registry.count() == 2


def _next_import_cleans_up(registry: DndRegistry, tmp_path: Path) -> None:
    result = registry.import_file(write_lines(tmp_path / "v3.txt", ["+919811000003"]))
    assert registry.mask("+919811000003") == FULLY_BLOCKED
    states = {v.version: v.state for v in registry.history()}
    assert states == {result.version: "current", 1: "retired", 2: "failed"}
    names = {t for t in inspect(registry.engine).get_table_names() if t.startswith("dnd_")}
    assert names == {"dnd_versions", f"dnd_v{result.version}"}


def _seed(registry: DndRegistry, tmp_path: Path) -> None:
    registry.import_file(write_lines(tmp_path / "v1.txt", ["+919811000001", "+919811000002"]))


def test_sigkill_in_the_middle_of_the_load(
    registry: DndRegistry, db_url: str, big_file: Path, tmp_path: Path
) -> None:
    _seed(registry, tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", _STALLING_IMPORT, db_url, str(big_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("LOADING")
        _previous_version_still_serves(registry)  # while the new version is half loaded
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    _previous_version_still_serves(registry)
    _next_import_cleans_up(registry, tmp_path)


def test_sigkill_of_the_cli_while_a_version_is_loading(
    registry: DndRegistry, db_url: str, big_file: Path, tmp_path: Path
) -> None:
    _seed(registry, tmp_path)
    child = subprocess.Popen(
        [LEGATO, "dnd", "import", str(big_file), "--db", db_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        loading = select(versions.c.version).where(versions.c.state == "loading")
        while time.monotonic() < deadline:
            with registry.engine.connect() as conn:
                if conn.execute(loading).first() is not None:
                    break
            assert child.poll() is None, "the import ended before it could be killed"
            time.sleep(0.005)
        else:
            pytest.fail("the import never started loading")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    _previous_version_still_serves(registry)
    _next_import_cleans_up(registry, tmp_path)


def test_lookups_keep_answering_through_a_switch(
    registry: DndRegistry, db_url: str, tmp_path: Path
) -> None:
    """A reader never fails and never sees a half-loaded version while another one lands."""
    import threading

    _seed(registry, tmp_path)
    second = tmp_path / "v2.txt"
    write_entries(second, np.arange(917_000_000_000, 917_000_300_000, dtype=np.int64))
    reader = DndRegistry(db_url)
    seen: list[tuple[int | None, int | None]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append((reader.mask("+919811000001"), reader.mask("+917000299999")))
        except BaseException as exc:  # any failure fails the test below
            errors.append(exc)
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        while not seen and not errors:
            time.sleep(0.001)
        registry.import_file(second)
        time.sleep(0.2)
    finally:
        done.set()
        thread.join(30)
    assert not errors
    old = [a for a, _ in seen]  # in v1 only
    new = [b for _, b in seen]  # in v2 only
    assert set(old) <= {FULLY_BLOCKED, None} and set(new) <= {FULLY_BLOCKED, None}
    assert old[0] == FULLY_BLOCKED and old[-1] is None and new[0] is None
    assert new[-1] == FULLY_BLOCKED
    # the switch happens once: no reader goes back to the old version after seeing the new
    assert FULLY_BLOCKED not in old[old.index(None) :]
    assert None not in new[new.index(FULLY_BLOCKED) :]
