"""Run every benchmark; each writes benchmarks/results/<name>.json and prints one summary line."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_loader  # noqa: E402
import bench_reader  # noqa: E402
import bench_student  # noqa: E402
import bench_teacher  # noqa: E402

if __name__ == "__main__":
    for bench in (bench_reader, bench_teacher, bench_student, bench_loader):
        print(bench.main(), flush=True)
