"""The stored registry on real SQLite and PostgreSQL: versions, changes, index."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from legato.core.policy.dnd import FULLY_BLOCKED, TransactionalPolicy, mask_of
from legato.dnd import DndIndex, DndRegistry, ImportMode, ImportRejected, NoRegistry

from .conftest import write_lines


def tables(registry: DndRegistry) -> set[str]:
    return {t for t in inspect(registry.engine).get_table_names() if t.startswith("dnd_")}


def test_full_import_counts_and_lookups(registry: DndRegistry, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "ncpr.csv",
        ["number,categories", "+919811000001,1;3", "+919811000002", "+919811000001,2", "+1415"],
    )
    result = registry.import_file(path, max_invalid=1)
    assert (result.report.accepted, result.report.duplicates, result.report.invalid) == (2, 1, 1)
    assert result.report.invalid_shown[0].line == 5
    assert result.version == 1 and result.numbers == 2 == registry.count()
    assert registry.lookup("+919811000001") == (mask_of([1, 2, 3]), 1)
    assert registry.mask("+919811000002") == FULLY_BLOCKED
    assert registry.mask("+919811000009") is None
    assert registry.is_dnd("+919811000001", 3)
    assert not registry.is_dnd("+919811000001", 4)
    assert not registry.is_dnd("+919811000002", transactional=True)
    blocking = DndRegistry(registry.engine, TransactionalPolicy.BLOCK)
    assert blocking.is_dnd("+919811000002", transactional=True)


def test_lookup_before_any_import_says_so(registry: DndRegistry) -> None:
    with pytest.raises(NoRegistry, match="no DND registry imported yet"):
        registry.lookup("+919811000001")
    assert registry.current() is None


def test_new_version_replaces_and_old_table_is_dropped(
    registry: DndRegistry, tmp_path: Path
) -> None:
    registry.import_file(write_lines(tmp_path / "v1.txt", ["+919811000001", "+919811000002"]))
    second = registry.import_file(write_lines(tmp_path / "v2.txt", ["+919811000003"]))
    assert second.version == 2
    assert registry.mask("+919811000001") is None
    assert registry.mask("+919811000003") == FULLY_BLOCKED
    assert tables(registry) == {"dnd_versions", "dnd_v2"}
    states = [(v.version, v.state, v.numbers) for v in registry.history()]
    assert states == [(2, "current", 1), (1, "retired", 2)]


def test_too_many_invalid_lines_change_nothing(registry: DndRegistry, tmp_path: Path) -> None:
    registry.import_file(write_lines(tmp_path / "v1.txt", ["+919811000001"]))
    bad = write_lines(tmp_path / "bad.txt", ["+919811000002", "oops", "+91"])
    with pytest.raises(ImportRejected, match="2 invalid line") as caught:
        registry.import_file(bad, max_invalid=1)
    assert [b.line for b in caught.value.report.invalid_shown] == [2, 3]
    with pytest.raises(ImportRejected):
        registry.import_file(bad, ImportMode.ADD)
    assert registry.current() is not None
    assert [v.version for v in registry.history()] == [1]
    assert registry.mask("+919811000001") == FULLY_BLOCKED
    assert registry.mask("+919811000002") is None


def test_add_and_remove_change_the_current_version(registry: DndRegistry, tmp_path: Path) -> None:
    registry.import_file(write_lines(tmp_path / "v1.txt", ["+919811000001", "+919811000002,4"]))
    added = registry.import_file(
        write_lines(
            tmp_path / "add.csv", ["+919811000002,5", "+919811000003,1;2", "+919811000003"]
        ),
        ImportMode.ADD,
    )
    assert (added.inserted, added.updated, added.report.duplicates) == (1, 1, 1)
    assert added.version == 1 and added.numbers == 3 == registry.count()
    assert registry.mask("+919811000002") == mask_of([5])  # the new preference replaces
    assert registry.mask("+919811000003") == FULLY_BLOCKED  # merged within the file
    removed = registry.import_file(
        write_lines(tmp_path / "rm.txt", ["+919811000001", "+919811000009"]), ImportMode.REMOVE
    )
    assert (removed.removed, removed.absent, removed.numbers) == (1, 1, 2)
    assert registry.mask("+919811000001") is None
    info = registry.current()
    assert info is not None and (info.numbers, info.generation) == (2, 2) == (registry.count(), 2)
    assert tables(registry) == {"dnd_versions", "dnd_v1"}


def test_add_without_registry_creates_one_and_remove_refuses(
    registry: DndRegistry, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "x.txt", ["+919811000001"])
    with pytest.raises(NoRegistry):
        registry.import_file(path, ImportMode.REMOVE)
    assert registry.import_file(path, ImportMode.ADD).version == 1
    assert registry.mask("+919811000001") == FULLY_BLOCKED


def test_in_memory_index_matches_the_store_and_knows_when_stale(
    registry: DndRegistry, tmp_path: Path
) -> None:
    lines = [f"+9198110{n:05d},{n % 7 + 1}" for n in range(0, 3000, 3)]
    registry.import_file(write_lines(tmp_path / "v1.csv", lines))
    index = DndIndex.load(registry)
    assert len(index) == 1000 and index.nbytes == 8000
    for n in range(0, 3002):
        number = f"+9198110{n:05d}"
        assert index.mask(number) == registry.mask(number)
    assert index.is_dnd("+919811000003", 4) and not index.is_dnd("+919811000003", 3)
    assert index.mask("+99999999") is None and index.mask("+999999999999999") is None
    assert not index.is_stale(registry)
    registry.import_file(write_lines(tmp_path / "add.txt", ["+919811000001"]), ImportMode.ADD)
    assert index.is_stale(registry)
    assert DndIndex.load(registry).mask("+919811000001") == FULLY_BLOCKED


def test_large_import_round_trips(registry: DndRegistry, tmp_path: Path) -> None:
    """Several load batches (more than 1M rows) land intact and in order."""
    import numpy as np

    from legato.dnd.parse import write_entries

    numbers = np.arange(919_000_000_000, 919_000_000_000 + 1_200_000 * 7, 7, dtype=np.int64)
    path = tmp_path / "big.txt"
    write_entries(path, numbers[::-1].copy())
    result = registry.import_file(path)
    assert result.numbers == 1_200_000 == registry.count()
    index = DndIndex.load(registry)
    assert np.array_equal(index.keys >> 8, numbers)
    assert registry.mask(f"+{numbers[-1]}") == FULLY_BLOCKED
    assert registry.mask(f"+{numbers[-1] + 1}") is None


def test_in_memory_sqlite_registry(tmp_path: Path) -> None:
    """`sqlite://` lives on one connection; lookups must use it rather than a new one."""
    registry = DndRegistry("sqlite://")
    with pytest.raises(NoRegistry):
        registry.mask("+919811000001")
    registry.import_file(write_lines(tmp_path / "v1.csv", ["+919811000001,6"]))
    assert registry.is_dnd("+919811000001", 6) and not registry.is_dnd("+919811000001", 5)
    assert registry.lookup("+919811000002") == (None, 1)
    registry.close()
