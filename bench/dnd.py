"""DND registry benchmark: import N numbers into SQLite and PostgreSQL in one run.

Measures import seconds per engine, lookup latency (p50/p99) from each stored registry and
from the in-memory index, index load time, and bytes per number in memory and on disk.
Goals (issue 4): 10M numbers imported in < 30 s; lookup p99 < 1 ms.

    python bench/dnd.py            # 10,000,000 numbers
    python bench/dnd.py --quick    # 1,000,000 numbers
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from legato.dnd import DndIndex, DndRegistry
from legato.dnd.tables import table_name

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PARTIAL_SHARE = 0.25  # NCPR subscribers who block only some categories
CATEGORY_CHOICES = ["1", "2", "1;3", "4;5;6", "7", "2;7", "3;4"]


def generate(path: Path, n: int, seed: int) -> np.ndarray:
    """Write ``n`` Indian mobile numbers (CSV, a quarter with categories); return them."""
    rng = np.random.default_rng(seed)
    numbers = rng.integers(916_000_000_000, 920_000_000_000, size=n, dtype=np.int64)
    partial = rng.random(n) < PARTIAL_SHARE
    cats = rng.integers(0, len(CATEGORY_CHOICES), size=n)
    with open(path, "w") as out:
        out.write("number,categories\n")
        step = 1 << 20
        for start in range(0, n, step):
            part = numbers[start : start + step].tolist()
            flags = partial[start : start + step].tolist()
            cs = cats[start : start + step].tolist()
            out.write(
                "".join(
                    f"+{num},{CATEGORY_CHOICES[c]}\n" if p else f"+{num}\n"
                    for num, p, c in zip(part, flags, cs, strict=True)
                )
            )
    return numbers


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """(p50, p99) in microseconds."""
    q = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return q[49] / 1000, q[98] / 1000


def time_lookups(fn: Callable[[str], object], probes: list[str]) -> tuple[float, float]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    for number in probes:
        start = clock()
        fn(number)
        samples.append(clock() - start)
    return percentiles(samples)


def set_bytes_per_number(sample: np.ndarray) -> float:
    """Memory of the alternative: a Python dict int → mask (a set would not hold masks)."""
    values = sample.tolist()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = {v: 255 for v in values}
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del table
    return (after - before) / len(values)


def disk_bytes(registry: DndRegistry, version: int, sqlite_path: Path | None) -> int:
    if sqlite_path is not None:
        return sqlite_path.stat().st_size
    with registry.engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT pg_total_relation_size('{table_name(version)}')")
            ).scalar_one()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", "-n", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="1,000,000 numbers (< 1 minute)")
    parser.add_argument("--probes", type=int, default=20_000, help="lookups per store")
    parser.add_argument("--pg", default=PG_ADMIN, help="PostgreSQL admin URL")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    n = 1_000_000 if args.quick else args.numbers
    console = Console()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="legato-dnd-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    source = workdir / f"ncpr-{n}.csv"
    t0 = time.perf_counter()
    numbers = generate(source, n, seed=42)
    console.print(
        f"generated {n:,} lines ({source.stat().st_size / 1e6:.0f} MB) "
        f"in {time.perf_counter() - t0:.1f} s: {source}"
    )
    rng = random.Random(7)
    present = [f"+{v}" for v in rng.sample(numbers.tolist(), min(args.probes // 2, n))]
    absent = [f"+{rng.randrange(930_000_000_000, 940_000_000_000)}" for _ in present]
    probes = present + absent
    rng.shuffle(probes)

    pg_name = f"legato_dnd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
    pg_url = args.pg.rsplit("/", 1)[0] + f"/{pg_name}"
    sqlite_path = workdir / "dnd-bench.db"
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)

    rows: dict[str, dict[str, str]] = {}
    figures: dict[str, float] = {}
    try:
        for engine_name, url, path in (
            ("sqlite", f"sqlite:///{sqlite_path}", sqlite_path),
            ("postgresql", pg_url, None),
        ):
            registry = DndRegistry(url)
            result = registry.import_file(source)
            store_p50, store_p99 = time_lookups(registry.mask, probes)
            control = registry._lookup_connection()  # same connection, no registry table
            ctl_p50, ctl_p99 = time_lookups(
                lambda _n, c=control: c.execute("SELECT 1").fetchone(), probes
            )
            t = time.perf_counter()
            index = DndIndex.load(registry)
            index_load = time.perf_counter() - t
            disk = disk_bytes(registry, result.version, path)
            assert len(index) == result.numbers
            rows[engine_name] = {
                "numbers imported": f"{result.numbers:,}",
                "duplicates / invalid": f"{result.report.duplicates:,} / {result.report.invalid:,}",
                "import s (total)": f"{result.seconds:.1f}",
                "  read+check+sort s": f"{result.phases['read']:.1f}",
                "  load+index s": f"{result.phases['load']:.1f}",
                "  switch s": f"{result.phases['switch']:.2f}",
                "lookup from store p50 / p99 µs": f"{store_p50:.0f} / {store_p99:.0f}",
                "control 'SELECT 1' p50 / p99 µs": f"{ctl_p50:.0f} / {ctl_p99:.0f}",
                "disk bytes/number": f"{disk / result.numbers:.1f}",
                "index load s": f"{index_load:.1f}",
            }
            figures[f"{engine_name}_import_s"] = result.seconds
            figures[f"{engine_name}_lookup_p99_us"] = store_p99
            figures[f"{engine_name}_disk_bytes"] = disk / result.numbers
            registry.engine.dispose()

        idx_p50, idx_p99 = time_lookups(index.mask, probes * 5)
        hits = sum(index.mask(p) is not None for p in present)
        assert hits == len(present), "index lost numbers"
        dict_bytes = set_bytes_per_number(numbers[: min(n, 1_000_000)])
        in_memory = {
            "index lookup p50 / p99 µs": f"{idx_p50:.1f} / {idx_p99:.1f}",
            "index bytes/number": f"{index.nbytes / len(index):.1f}",
            "Python dict bytes/number (rejected)": f"{dict_bytes:.0f}",
        }
        figures["lookup_p99_us"] = idx_p99
        figures["bytes_per_number"] = index.nbytes / len(index)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()

    table = Table(title=f"DND registry, {n:,} numbers (CSV, {PARTIAL_SHARE:.0%} with categories)")
    table.add_column("measure")
    table.add_column("SQLite", justify="right")
    table.add_column("PostgreSQL", justify="right")
    for key in rows["sqlite"]:
        table.add_row(key, rows["sqlite"][key], rows["postgresql"][key])
    for key, value in in_memory.items():
        table.add_row(key, value, "(same index)")
    console.print(table)
    load1, load5, _ = os.getloadavg()
    console.print(
        f"machine: {os.cpu_count()} cores, load average {load1:.1f} (1 min) {load5:.1f} (5 min) "
        f"at the end; python {sys.version.split()[0]}"
    )
    print(
        f"numbers={n} sqlite_import_s={figures['sqlite_import_s']:.1f} "
        f"pg_import_s={figures['postgresql_import_s']:.1f} "
        f"sqlite_lookup_p99_us={figures['sqlite_lookup_p99_us']:.0f} "
        f"pg_lookup_p99_us={figures['postgresql_lookup_p99_us']:.0f} "
        f"lookup_p99_us={figures['lookup_p99_us']:.1f} "
        f"bytes_per_number={figures['bytes_per_number']:.0f}"
    )


if __name__ == "__main__":
    main()
