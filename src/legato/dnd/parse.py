"""Reading a DND file into a sorted, de-duplicated array of packed entries.

A file is CSV (``number[,categories]``) or one number a line, optionally gzip-compressed
and optionally starting with a header line (``number...``). Every line is validated; a
regular-expression fast path parses whole blocks at once and any block it cannot take
whole is re-read line by line by :func:`parse_line`, which is the single definition of a
valid line and the one that names the rule a bad line breaks.

Numbers use a strict, fast check instead of ``phonenumbers`` (which needs ~20 µs a
number, over three minutes for 10M lines): ``+`` then 8 to 15 digits. Entries are packed
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
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from legato.core.policy.dnd import FULLY_BLOCKED, MAX_DIGITS, MIN_DIGITS, mask_of

Keys = npt.NDArray[np.int64]
ProgressFn = Callable[[int, int], None]
"""Called with (bytes read, total bytes) as the file is parsed."""

BLOCK_BYTES = 8 << 20
MASK_BITS = 8
MASK = (1 << MASK_BITS) - 1

_NUMBERS_ONLY = re.compile(rb"^\+(\d{%d,%d})\r?$" % (MIN_DIGITS, MAX_DIGITS), re.M)
_WITH_CATEGORIES = re.compile(
    rb"^\+(\d{%d,%d})(?:,([0-7](?:;[0-7])*)?)?\r?$" % (MIN_DIGITS, MAX_DIGITS), re.M
)
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


def open_source(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream of decompressed bytes, the raw file for progress); gzip found by magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller through the returned pair
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    raw.seek(0)
    return raw, raw


def _blocks(stream: BinaryIO, block_bytes: int) -> Iterator[bytes]:
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


class _Collector:
    """Accumulates packed entries and the report over the blocks of one file."""

    def __init__(self, max_shown: int) -> None:
        self.parts: list[Keys] = []
        self.report = ParseReport()
        self.max_shown = max_shown
        self._category_masks: dict[bytes, int] = {b"": FULLY_BLOCKED}

    def block(self, block: bytes) -> None:
        """Take one block, fast when every line is valid, line by line otherwise."""
        first_line = self.report.lines + 1
        count = block.count(b"\n")
        self.report.lines += count
        keys = self._fast(block, count)
        if keys is None:
            keys = self._slow(block, first_line)
        self.report.entries += len(keys)
        self.parts.append(keys)

    def _fast(self, block: bytes, count: int) -> Keys | None:
        if b"," not in block:
            numbers = _NUMBERS_ONLY.findall(block)
            if len(numbers) != count:
                return None
            keys = np.array(numbers, dtype=f"S{MAX_DIGITS}").astype(np.int64)
            return (keys << MASK_BITS) | FULLY_BLOCKED
        pairs = _WITH_CATEGORIES.findall(block)
        if len(pairs) != count:
            return None
        numbers_, categories = zip(*pairs, strict=True)
        masks = self._category_masks
        try:
            mask_list = [masks[c] for c in categories]
        except KeyError:
            for c in set(categories) - masks.keys():
                masks[c] = categories_mask(c.decode())  # the pattern admits only valid ones
            mask_list = [masks[c] for c in categories]
        keys = np.array(numbers_, dtype=f"S{MAX_DIGITS}").astype(np.int64) << MASK_BITS
        return keys | np.array(mask_list, dtype=np.int64)

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
    """Sort ``keys`` in place and fold repeated numbers into one entry (OR of masks)."""
    if len(keys) == 0:
        return keys, 0
    keys.sort(kind="stable" if len(keys) < 1024 else "quicksort")
    numbers = keys >> MASK_BITS
    starts = np.flatnonzero(np.concatenate(([True], numbers[1:] != numbers[:-1])))
    if len(starts) == len(keys):
        return keys, 0
    masks = np.bitwise_or.reduceat(keys & MASK, starts)
    merged = (numbers[starts] << MASK_BITS) | masks
    return merged, len(keys) - len(starts)


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
