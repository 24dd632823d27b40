"""Reading DND files: validation with line numbers, duplicates, categories, gzip."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.core.policy.dnd import FULLY_BLOCKED, mask_of
from legato.dnd.parse import LineError, merge_duplicates, parse_line, read_entries

from .conftest import write_lines


def entries(keys: np.ndarray) -> dict[str, int]:
    return {f"+{int(k) >> 8}": int(k) & 0xFF for k in keys}


def test_numbers_only_file(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.txt", ["+919811000001", "+919811000002", "+14155550100"])
    keys, report = read_entries(path)
    assert entries(keys) == {
        "+14155550100": FULLY_BLOCKED,
        "+919811000001": FULLY_BLOCKED,
        "+919811000002": FULLY_BLOCKED,
    }
    assert (report.lines, report.accepted, report.duplicates, report.invalid) == (3, 3, 0, 0)
    assert list(keys) == sorted(keys)


def test_csv_with_header_categories_and_duplicates(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "a.csv",
        [
            "number,categories",
            "+919811000001,1;3",
            "+919811000002",
            "+919811000001,7",  # duplicate: categories merge to the stricter union
            "+919811000003,0",
            '"+919811000004","2|4"',
            "+919811000005,",
            "+919811000002",
        ],
    )
    keys, report = read_entries(path)
    assert entries(keys) == {
        "+919811000001": mask_of([1, 3, 7]),
        "+919811000002": FULLY_BLOCKED,
        "+919811000003": FULLY_BLOCKED,
        "+919811000004": mask_of([2, 4]),
        "+919811000005": FULLY_BLOCKED,
    }
    assert (report.lines, report.entries, report.accepted, report.duplicates) == (8, 7, 5, 2)
    assert report.invalid == 0


def test_invalid_lines_are_counted_and_reported_with_their_line_numbers(tmp_path: Path) -> None:
    lines = ["+919811000001"] * 3 + [
        "919811000002",  # 4: no plus
        "+9198110",  # 5: 7 digits
        "+919811000003,8",  # 6: bad category
        "+91981100000a",  # 7
        "+919811000004,1,2",  # 8: three fields
        "",  # 9: blank lines are skipped, not invalid
        "+1234567890123456",  # 10: 16 digits
        "+0919811000001",  # 11: would collide with +919811000001 as an integer
    ]
    keys, report = read_entries(write_lines(tmp_path / "bad.txt", lines), max_shown=3)
    assert entries(keys) == {"+919811000001": FULLY_BLOCKED}
    assert report.invalid == 7
    assert report.duplicates == 2
    assert [bad.line for bad in report.invalid_shown] == [4, 5, 6]
    assert "must start with '+'" in report.invalid_shown[0].reason
    assert "has 7 digits" in report.invalid_shown[1].reason
    assert "category '8'" in report.invalid_shown[2].reason
    _, full = read_entries(write_lines(tmp_path / "bad.txt", lines))
    assert [bad.line for bad in full.invalid_shown] == [4, 5, 6, 7, 8, 10, 11]
    assert "never starts with 0" in full.invalid_shown[6].reason
    assert "3 fields" in full.invalid_shown[4].reason
    assert "16 digits" in full.invalid_shown[5].reason


def test_gzip_and_crlf_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"+919811000001,2\r\n+919811000002\r\n+919811000003,5;6")
    keys, report = read_entries(path)
    assert entries(keys) == {
        "+919811000001": mask_of([2]),
        "+919811000002": FULLY_BLOCKED,
        "+919811000003": mask_of([5, 6]),
    }
    assert report.lines == 3 and report.invalid == 0


def test_merge_duplicates_folds_masks() -> None:
    keys = np.array([(5 << 8) | 1, (3 << 8) | 2, (5 << 8) | 4, (5 << 8) | 1], dtype=np.int64)
    merged, duplicates = merge_duplicates(keys)
    assert duplicates == 2
    assert merged.tolist() == [(3 << 8) | 2, (5 << 8) | 5]


line = st.one_of(
    st.integers(10**7, 10**15 - 1).map(lambda n: f"+{n}"),
    st.tuples(
        st.integers(10**7, 10**15 - 1),
        st.lists(st.integers(0, 7), min_size=0, max_size=3).map(lambda cs: ";".join(map(str, cs))),
    ).map(lambda t: f"+{t[0]},{t[1]}"),
    st.sampled_from(
        [
            "",
            "+1",
            "12345678",
            "+0919811000001",
            "+919811000001,1;",
            "+919811000001,;1",
            "+9198x1000000",
            "+919811000001,9",
            " +919811000007 ",
        ]
    ),
    st.text(alphabet='+0123456789,; |"x', max_size=20).filter(lambda s: "\n" not in s),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(line, max_size=60), block=st.integers(16, 200))
def test_block_fast_path_agrees_with_line_by_line_rule(lines: list[str], block: int) -> None:
    """Whatever the block size, the result equals applying parse_line to every line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_lines(Path(tmp) / "f.txt", lines)
        keys, report = read_entries(path, block_bytes=block, max_shown=1000)
    expected: dict[int, int] = {}
    bad_lines = []
    valid = 0
    for number, text in enumerate(lines, start=1):
        if number == 1 and text.strip().strip('"').lower().startswith("number"):
            continue
        try:
            key = parse_line(text)
        except LineError:
            bad_lines.append(number)
            continue
        if key is not None:
            valid += 1
            expected[key >> 8] = expected.get(key >> 8, 0) | (key & 0xFF)
    assert {int(k) >> 8: int(k) & 0xFF for k in keys} == expected
    assert [bad.line for bad in report.invalid_shown] == bad_lines
    assert report.entries == valid and report.accepted == len(expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(10**7, 10**7 + 40), st.integers(1, 255)), max_size=120))
def test_merge_duplicates_equals_a_dict_fold(pairs: list[tuple[int, int]]) -> None:
    expected: dict[int, int] = {}
    for number, mask in pairs:
        expected[number] = expected.get(number, 0) | mask
    keys = np.array([(n << 8) | m for n, m in pairs], dtype=np.int64)
    merged, duplicates = merge_duplicates(keys)
    assert [(int(k) >> 8, int(k) & 0xFF) for k in merged] == sorted(expected.items())
    assert duplicates == len(pairs) - len(expected)
