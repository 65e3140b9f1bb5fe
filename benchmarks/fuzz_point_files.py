"""Mutated point files read in a watched child process: what the readers do with each one
(read, refused in one line, an error escaping, the process dying, a hang), including the
outcomes no test can survive (an abort kills pytest with it). Writes
benchmarks/results/fuzz_point_files.json.

    python benchmarks/fuzz_point_files.py --files 3000 --seed 0
    python benchmarks/fuzz_point_files.py --formats laz --size 120000 --files 1500 --points-only

Each valid file is a scan written by laspy (LAS 1.2, point format 3), by zeroseg3d's
writers, or a PCL-style binary_compressed PCD (the tests' writer); a mutation truncates it, overwrites, inserts or deletes up to 12 bytes at a random
place (with ``--points-only``: inside the point data and LASzip's chunk table, where a
decompressor meets the damage), one to four times.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REPO, RESULTS, write_result

sys.path.insert(0, str(REPO / "tests"))
from test_custom_scans import write_pcd  # noqa: E402
from test_hostile_inputs import mutate  # noqa: E402

# stderr is a file: a library writing there (a Rust panic's message) marks the file it read;
# zeroseg3d's own warnings (one line naming the file) are caught and not counted
WORKER = r"""
import os, sys, time, warnings
from pathlib import Path
from zeroseg3d.datasets.io import read_points
from zeroseg3d.errors import ZeroSeg3DError
files, progress = Path(sys.argv[1]).read_text().split(), Path(sys.argv[2])
with open(sys.argv[3], "a") as log:
    for index in range(int(sys.argv[4]), len(files)):
        progress.write_text(str(index))
        start, written = time.perf_counter(), os.fstat(2).st_size
        try:
            with warnings.catch_warnings(record=True):
                read_points(files[index])
            outcome = "read"
        except ZeroSeg3DError as error:
            outcome = "refused" if "\n" not in str(error) and files[index] in str(error) else "refused badly"
        except BaseException as error:
            outcome = f"escaped {type(error).__name__}"
        sys.stderr.flush()
        if os.fstat(2).st_size > written:
            outcome += " (stderr)"
        log.write(f"{index}\t{outcome}\t{time.perf_counter() - start:.4f}\n")
        log.flush()
progress.write_text("done")
"""


def valid_file(kind: str, points: int, folder: Path) -> Path:
    from zeroseg3d.datasets.io import write_ply

    rng = np.random.default_rng(0)
    xyz = rng.normal(0, 20, (points, 3))
    intensity = rng.random(points)
    path = folder / f"valid.{kind}"
    if kind in ("las", "laz"):
        import laspy

        data = laspy.LasData(laspy.LasHeader(point_format=3, version="1.2"))
        data.header.scales = [0.001] * 3
        data.x, data.y, data.z = xyz.T
        data.intensity = (intensity * 65535).astype(np.uint16)
        data.write(path)
    elif kind == "ply":
        write_ply(path, np.concatenate([xyz, intensity[:, None]], axis=1).astype(np.float32))
    elif kind == "pcd":   # PCL's binary_compressed (LZF)
        write_pcd(path, np.concatenate([xyz, intensity[:, None]], axis=1).astype(np.float32),
                  np.zeros(points, np.uint32), "binary_compressed")
    elif kind == "npy":
        np.save(path, np.concatenate([xyz, intensity[:, None]], axis=1).astype(np.float32))
    else:
        raise SystemExit(f"unknown format {kind!r}")
    return path


def mutated(data: bytes, rng: random.Random, lo: int) -> bytes:
    """``data`` mutated one to four times at or after byte ``lo`` (the tests' mutations)."""
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["truncate", "set", "insert", "delete"])
        payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
        data = mutate(data, [(kind, rng.randrange(lo, len(data) + 1), payload)])
    return data


def run(files: list[Path], folder: Path, hang_s: float) -> list[str]:
    """Each file's outcome: the worker's, or 'died (exit code)' / 'hang' where it stopped."""
    listing, progress, log = folder / "files.txt", folder / "progress", folder / "log.tsv"
    environment = {**os.environ, "RUST_BACKTRACE": "0"}
    listing.write_text("\n".join(map(str, files)))
    outcomes: dict[int, str] = {}
    start = 0
    while start < len(files):
        progress.write_text("")
        with open(folder / "stderr", "ab") as stderr:
            child = subprocess.Popen([sys.executable, "-c", WORKER, str(listing), str(progress), str(log),
                                      str(start)], stderr=stderr, env=environment)
        last, seen = None, time.monotonic()
        while child.poll() is None:
            now = progress.read_text()
            if now != last:
                last, seen = now, time.monotonic()
            elif now and time.monotonic() - seen > hang_s:
                child.kill()
                break
            time.sleep(0.02)
        child.wait()
        for line in log.read_text().splitlines():
            index, outcome, _ = line.split("\t")
            outcomes[int(index)] = outcome
        now = progress.read_text()
        if now == "done":
            break
        index = int(now)
        if index not in outcomes:
            outcomes[index] = "hang" if child.returncode == -9 else f"died ({child.returncode})"
        start = index + 1
    return [outcomes.get(i, "unrun") for i in range(len(files))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", nargs="+", default=["las", "laz", "ply", "pcd", "npy"])
    parser.add_argument("--files", type=int, default=3000, help="mutated files per format")
    parser.add_argument("--size", type=int, default=5, help="points in the valid file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points-only", action="store_true", help="mutate only past LAS's public header and VLRs")
    parser.add_argument("--hang", type=float, default=10.0, help="seconds without progress counted as a hang")
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz_point_files.json")
    args = parser.parse_args()
    result = {"seed": args.seed, "files_per_format": args.files, "valid_points": args.size,
              "points_only": args.points_only, "hang_s": args.hang, "formats": {}}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for kind in args.formats:
            valid = valid_file(kind, args.size, folder)
            data = valid.read_bytes()
            lo = 0
            if args.points_only and kind in ("las", "laz"):
                lo = int.from_bytes(data[96:100], "little")  # the point data's offset
            rng = random.Random(f"{args.seed}-{kind}")
            files = []
            for index in range(args.files):
                path = folder / f"m{index:05d}.{kind}"
                path.write_bytes(mutated(data, rng, lo))
                files.append(path)
            start = time.perf_counter()
            (folder / kind).mkdir()
            outcomes = run(files, folder / kind, args.hang)
            counts = collections.Counter(outcomes)
            bad = {o: n for o, n in counts.items() if o not in ("read", "refused")}
            result["formats"][kind] = {"valid_bytes": len(data), "counts": dict(counts.most_common()),
                                       "seconds": round(time.perf_counter() - start, 1),
                                       "examples": {o: [files[i].name for i, x in enumerate(outcomes) if x == o][:5]
                                                    for o in bad}}
            print(f"{kind}: {dict(counts.most_common())}", flush=True)
            for path in files:
                path.unlink()
    write_result(args.out.stem, result, args.out)


if __name__ == "__main__":
    main()
