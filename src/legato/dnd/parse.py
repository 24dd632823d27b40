"""Reading a DND file into a sorted, de-duplicated array of packed entries.

A file is CSV (``number[,categories]``) or one number a line, optionally gzip-compressed
and optionally starting with a header line (``number...``). Every line is validated; a
regular-expression fast path parses whole blocks at once and any block it cannot take
whole is re-read line by line by :func:`parse_line`, which is the single definition of a
valid line and the one that names the rule a bad line breaks.

Numbers use a strict, fast check instead of ``phonenumbers`` (measured 82 µs a number
to parse and validate: 14 minutes for 10M lines): ``+`` then 8 to 15 digits. Entries are packed
into one int64 each, ``digits << 8 | mask``: E.164 numbers never start with 0, so the
digits as an integer identify the number, and 15 digits need 50 bits.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import numpy as np
import numpy.typing as npt

from legato.core.policy.dnd import FULLY_BLOCKED, MAX_DIGITS, MIN_DIGITS, mask_of

Keys = npt.NDArray[np.int64]
ProgressFn = Callable[[int, int], None]
"""Called with (bytes read, total bytes) as the file is parsed."""

BLOCK_BYTES = 8 << 20
MASK_BITS = 8
MASK = (1 << MASK_BITS) - 1

_CATEGORY_SPLIT = re.compile(r"[;| ]+")


class LineError(ValueError):
    """A line that breaks a rule; the message names the rule."""


@dataclass(frozen=True)
class InvalidLine:
    """One rejected line, as reported to the user."""

    line: int
    reason: str
    text: str


@dataclass
class ParseReport:
    """What reading a file found."""

    lines: int = 0
    entries: int = 0
    """Valid lines (before removing duplicates)."""
    invalid: int = 0
    duplicates: int = 0
    invalid_shown: list[InvalidLine] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """Distinct numbers taken from the file."""
        return self.entries - self.duplicates


def categories_mask(text: str) -> int:
    """Mask of a categories field: ``1;3;7`` (also ``|`` or spaces), ``0`` or empty = all."""
    text = text.strip().strip('"').strip()
    if not text:
        return FULLY_BLOCKED
    values: list[int] = []
    for token in _CATEGORY_SPLIT.split(text):
        if not (token.isascii() and token.isdigit()) or int(token) > 7:
            raise LineError(f"category {token!r} is not 0 (all) or 1..7")
        values.append(int(token))
    return mask_of(values)


def number_digits(text: str) -> int:
    """The digits of a strict ``+`` and 8..15 digits number, as an integer."""
    if not text.startswith("+"):
        raise LineError(f"number {text!r} must start with '+' and the country code")
    digits = text[1:]
    if not (digits.isascii() and digits.isdigit()):
        raise LineError(f"number {text!r} must have only digits after '+'")
    if digits.startswith("0"):
        raise LineError(f"number {text!r}: a country code never starts with 0")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise LineError(
            f"number {text!r} has {len(digits)} digits; E.164 allows {MIN_DIGITS} to {MAX_DIGITS}"
        )
    return int(digits)


def parse_line(raw: str) -> int | None:
    """The packed entry of one line, None for a blank line; raises :class:`LineError`."""
    text = raw.strip()
    if not text:
        return None
    fields = text.split(",")
    if len(fields) > 2:
        raise LineError(f"expected 'number[,categories]', got {len(fields)} fields")
    number = number_digits(fields[0].strip().strip('"').strip())
    mask = categories_mask(fields[1]) if len(fields) == 2 else FULLY_BLOCKED
    return (number << MASK_BITS) | mask


def is_header(raw: str) -> bool:
    """True for a first line that names the columns rather than holding a number."""
    return raw.strip().strip('"').lower().startswith("number")


def open_source(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(stream of decompressed bytes, the raw file for progress); gzip found by magic bytes."""
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - the caller closes the pair
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), raw
    raw.seek(0)
    return raw, raw


def _blocks(stream: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines (each ends with a newline)."""
    rest = b""
    while True:
        chunk = stream.read(block_bytes)
        if not chunk:
            if rest:
                yield rest + b"\n"
            return
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        rest = chunk[cut:]
        if cut:
            yield chunk[:cut]


_NL, _CR, _PLUS, _COMMA, _SEMI, _ZERO = 10, 13, 43, 44, 59, 48
# Bit of each byte in a categories field: '0' → all, '1'..'7' → 1 << (d - 1), others 0.
_CATEGORY_BITS = np.zeros(256, dtype=np.int64)
_CATEGORY_BITS[_ZERO] = FULLY_BLOCKED
for _d in range(1, 8):
    _CATEGORY_BITS[_ZERO + _d] = 1 << (_d - 1)


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenated ``arange(start, start + length)`` for every pair, without a loop."""
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def vector_block(block: bytes) -> Keys | None:
    """Packed entries of a block of lines, parsed with numpy; None if any line is unusual.

    Takes only the strict forms ``+digits``, ``+digits,`` and ``+digits,d;d;...`` (d in
    0..7), with LF or CRLF endings; anything else (blank lines, quotes, spaces, other
    separators, errors) returns None and the block is read line by line instead, so this
    function decides nothing :func:`parse_line` would decide differently.
    """
    buf = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(buf == _NL)
    starts = np.empty_like(newlines)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    if np.any(buf[starts] != _PLUS) or np.any(buf[starts + 1] == _ZERO):  # also blank lines
        return None
    non_digits = np.flatnonzero((buf - _ZERO).astype(np.uint8) > 9)
    ends = non_digits[np.searchsorted(non_digits, starts + 1)]  # '\n' is a non-digit
    lengths = ends - starts - 1
    if np.any((lengths < MIN_DIGITS) | (lengths > MAX_DIGITS)):
        return None
    term = buf[ends]
    line_end = newlines - (buf[newlines - 1] == _CR)  # where the line's content stops
    plain = (ends == line_end) & ((term == _NL) | (term == _CR))
    with_field = term == _COMMA
    if not np.all(plain | with_field):
        return None
    masks = np.full(len(starts), FULLY_BLOCKED, dtype=np.int64)
    if with_field.any():
        field_starts = ends[with_field] + 1
        field_lengths = line_end[with_field] - field_starts
        if np.any((field_lengths > 0) & (field_lengths % 2 == 0)):
            return None
        positions = _ranges(field_starts, field_lengths)
        chars = buf[positions]
        relative = positions - np.repeat(field_starts, field_lengths)
        is_digit = (chars >= _ZERO) & (chars <= _ZERO + 7)
        if not np.all(np.where(relative % 2 == 0, is_digit, chars == _SEMI)):
            return None
        filled = field_lengths > 0
        if filled.any():
            firsts = np.concatenate(([0], np.cumsum(field_lengths)[:-1]))[filled]
            field_masks = np.full(len(field_starts), FULLY_BLOCKED, dtype=np.int64)
            field_masks[filled] = np.bitwise_or.reduceat(_CATEGORY_BITS[chars], firsts)
            masks[with_field] = field_masks
    keys = np.zeros(len(starts), dtype=np.int64)
    first = starts + 1
    for j in range(int(lengths.max())):  # Horner's rule, one digit column at a time
        if j < MIN_DIGITS:
            keys = keys * 10 + (buf[first + j] - _ZERO)
        else:
            longer = lengths > j
            keys[longer] = keys[longer] * 10 + (buf[first[longer] + j] - _ZERO)
    return (keys << MASK_BITS) | masks


class _Collector:
    """Accumulates packed entries and the report over the blocks of one file."""

    def __init__(self, max_shown: int) -> None:
        self.parts: list[Keys] = []
        self.report = ParseReport()
        self.max_shown = max_shown

    def block(self, block: bytes) -> None:
        """Take one block, fast when every line is valid, line by line otherwise."""
        first_line = self.report.lines + 1
        count = block.count(b"\n")
        self.report.lines += count
        keys = vector_block(block) if count else np.empty(0, np.int64)
        if keys is None:
            keys = self._slow(block, first_line)
        self.report.entries += len(keys)
        self.parts.append(keys)

    def _slow(self, block: bytes, first_line: int) -> Keys:
        out: list[int] = []
        for offset, raw in enumerate(block.split(b"\n")[:-1]):
            text = raw.decode("utf-8", errors="replace")
            try:
                key = parse_line(text)
            except LineError as exc:
                self.invalid(first_line + offset, str(exc), text)
                continue
            if key is not None:
                out.append(key)
        return np.array(out, dtype=np.int64)

    def invalid(self, line: int, reason: str, text: str) -> None:
        self.report.invalid += 1
        if len(self.report.invalid_shown) < self.max_shown:
            self.report.invalid_shown.append(InvalidLine(line, reason, text[:80]))

    def result(self) -> Keys:
        """Sorted unique entries; duplicates merge their categories (the stricter union)."""
        keys = np.concatenate(self.parts) if self.parts else np.empty(0, np.int64)
        self.parts.clear()
        keys, self.report.duplicates = merge_duplicates(keys)
        return keys


def merge_duplicates(keys: Keys) -> tuple[Keys, int]:
    """Sort ``keys`` in place and fold repeated numbers into one entry (OR of masks).

    Works on the few entries involved in duplicates only, so the extra memory is one
    temporary the size of ``keys`` plus a byte a number, not several full-size arrays.
    """
    if len(keys) == 0:
        return keys, 0
    keys.sort()
    dup = np.flatnonzero((keys[1:] ^ keys[:-1]) <= MASK)  # keys[i + 1] repeats keys[i]
    if len(dup) == 0:
        return keys, 0
    involved = np.union1d(dup, dup + 1)
    run_starts = np.flatnonzero(~np.isin(involved, dup + 1))
    run_masks = np.bitwise_or.reduceat(keys[involved] & MASK, run_starts)
    lasts = involved[np.append(run_starts[1:], len(involved)) - 1]
    keys[lasts] = (keys[lasts] & ~np.int64(MASK)) | run_masks
    keep = np.ones(len(keys), dtype=bool)
    keep[dup] = False  # every entry but the last of its run
    return keys[keep], len(dup)


def read_entries(
    path: Path,
    *,
    max_shown: int = 20,
    progress: ProgressFn | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[Keys, ParseReport]:
    """Parse a whole DND file into sorted unique packed entries and a report."""
    total = os.path.getsize(path)
    collector = _Collector(max_shown)
    stream, raw = open_source(path)
    with raw, stream:
        first = True
        for block in _blocks(stream, block_bytes):
            if first:
                first = False
                block = _skip_header(block, collector)
            collector.block(block)
            if progress is not None:
                progress(raw.tell(), total)
    return collector.result(), collector.report


def _skip_header(block: bytes, collector: _Collector) -> bytes:
    end = block.find(b"\n") + 1
    if is_header(block[:end].decode("utf-8", errors="replace")):
        collector.report.lines += 1
        return block[end:]
    return block


def write_entries(path: Path, numbers: npt.NDArray[np.int64]) -> None:
    """Write one ``+digits`` number a line (used by the benchmark and tests)."""
    with open(path, "wb") as out:
        for start in range(0, len(numbers), 1 << 20):
            part = numbers[start : start + (1 << 20)]
            out.write(b"".join(b"+%d\n" % n for n in part.tolist()))


__all__ = [
    "InvalidLine",
    "Keys",
    "LineError",
    "ParseReport",
    "merge_duplicates",
    "parse_line",
    "read_entries",
]
