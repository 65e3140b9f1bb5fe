"""Run every benchmark; each writes benchmarks/results/<name>.json and prints its summary.
The side-by-side with the reference SpUNet and the teacher at real scale take most of the
time (several minutes each on 2 CPU cores); bench_predict and inference_precision need a
finished `make demo`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_allocator  # noqa: E402
import bench_layers  # noqa: E402
import bench_loader  # noqa: E402
import bench_nuscenes_tables  # noqa: E402
import bench_peer  # noqa: E402
import bench_predict  # noqa: E402
import bench_reader  # noqa: E402
import bench_rulebook  # noqa: E402
import bench_student  # noqa: E402
import bench_teacher  # noqa: E402
import bench_teacher_cache  # noqa: E402
import fuzz_point_files  # noqa: E402
import inference_precision  # noqa: E402

if __name__ == "__main__":
    sys.argv = sys.argv[:1]   # every benchmark with its default settings
    for bench in (bench_reader, bench_teacher, bench_student, bench_rulebook, bench_layers, bench_allocator, bench_loader,
                  bench_nuscenes_tables, fuzz_point_files, bench_peer, bench_teacher_cache, bench_predict, inference_precision):
        summary = bench.main()
        if summary:
            print(summary, flush=True)
