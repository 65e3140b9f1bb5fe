"""What checking nuScenes tables costs: nuscenes-devkit's NuScenes as it comes against
zeroseg3d's checked one (datasets/nuscenes.open_tables), on synthetic tables written here with
the record shapes of v1.0-trainval at a fraction of its size (``--scale``: 1.0 is its 34,149
samples, 2.63M sample_data and ego_pose records and 1.17M annotations). Each loader in its own
process, alternated over the rounds; medians. ``benchmarks/results/nuscenes_tables.json``."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result

VERSION = "v1.0-trainval"
SAMPLES = 34_149
SAMPLE_DATA_PER_SAMPLE = 77    # 2.63M / 34,149: key frames and sweeps of 1 lidar, 5 radars, 6 cameras
ANNOTATIONS_PER_SAMPLE = 34    # 1.17M / 34,149
SENSORS = ["LIDAR_TOP", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT",
           "CAM_FRONT_LEFT", "RADAR_FRONT", "RADAR_FRONT_LEFT", "RADAR_FRONT_RIGHT", "RADAR_BACK_LEFT",
           "RADAR_BACK_RIGHT"]


def token(kind: str, i: int) -> str:
    return f"{kind[:4]}{i:028x}"


def write_tables(root: Path, scale: float) -> dict:
    """Synthetic trainval-shaped tables and the (empty) map file the devkit checks for; no
    other data files (loading the tables does not open them)."""
    from zeroseg3d.datasets.vocabulary import Vocabulary

    tables = root / VERSION
    tables.mkdir(parents=True)
    (root / "maps").mkdir()
    (root / "maps" / "m.png").write_bytes(b"")
    samples = max(40, int(SAMPLES * scale))
    names = Vocabulary.load("nuscenes").raw_names
    rows = {
        "category": [{"token": token("cat", i), "name": names[i], "description": "", "index": i} for i in range(32)],
        "attribute": [{"token": token("attr", i), "name": f"a{i}", "description": ""} for i in range(8)],
        "visibility": [{"token": str(i), "level": "v", "description": ""} for i in range(1, 5)],
        "sensor": [{"token": token("sens", i), "channel": c, "modality": c.split("_")[0].lower()}
                   for i, c in enumerate(SENSORS)],
        "calibrated_sensor": [{"token": token("cali", i), "sensor_token": token("sens", i),
                               "translation": [1.0, 0.0, 1.5], "rotation": [0.5, -0.5, 0.5, -0.5],
                               "camera_intrinsic": [[1266.4, 0.0, 816.3], [0.0, 1266.4, 491.5], [0.0, 0.0, 1.0]]
                               if SENSORS[i].startswith("CAM") else []} for i in range(len(SENSORS))],
        "log": [{"token": token("log", 0), "logfile": "", "vehicle": "", "date_captured": "", "location": "x"}],
        "map": [{"token": token("map", 0), "log_tokens": [token("log", 0)], "category": "semantic_prior",
                 "filename": "maps/m.png"}],
        "instance": [{"token": token("inst", i), "category_token": token("cat", i % 32), "nbr_annotations": 1,
                      "first_annotation_token": token("ann", i), "last_annotation_token": token("ann", i)}
                     for i in range(samples * 2)],
    }
    scenes = samples // 40
    rows["scene"] = [{"token": token("scen", s), "log_token": token("log", 0), "nbr_samples": 40,
                      "name": f"scene-{s:04d}", "description": "", "first_sample_token": token("samp", 40 * s),
                      "last_sample_token": token("samp", 40 * s + 39)} for s in range(scenes)]
    samples = 40 * scenes
    rows["sample"] = [{"token": token("samp", i), "timestamp": i, "scene_token": token("scen", i // 40),
                       "prev": token("samp", i - 1) if i % 40 else "",
                       "next": token("samp", i + 1) if i % 40 != 39 else ""} for i in range(samples)]
    data, poses = [], []
    for i in range(samples * SAMPLE_DATA_PER_SAMPLE):
        sensor = i % len(SENSORS)
        key = i // len(SENSORS) % (SAMPLE_DATA_PER_SAMPLE // len(SENSORS)) == 0
        camera = SENSORS[sensor].startswith("CAM")
        poses.append({"token": token("pose", i), "timestamp": i, "rotation": [0.6, 0.0, 0.0, 0.8],
                      "translation": [411.3, 1180.9, 0.0]})
        data.append({"token": token("data", i), "sample_token": token("samp", i // SAMPLE_DATA_PER_SAMPLE),
                     "ego_pose_token": token("pose", i), "calibrated_sensor_token": token("cali", sensor),
                     "timestamp": i, "fileformat": "jpg" if camera else "pcd", "is_key_frame": key,
                     "height": 900 if camera else 0, "width": 1600 if camera else 0,
                     "filename": f"{'samples' if key else 'sweeps'}/{SENSORS[sensor]}/n008-2018-08-01-15-16-36"
                                 f"-0400__{SENSORS[sensor]}__{i}.jpg",
                     "prev": token("data", i - 1), "next": token("data", i + 1)})
    rows["ego_pose"], rows["sample_data"] = poses, data
    rows["sample_annotation"] = [{"token": token("ann", i), "sample_token": token("samp", i // ANNOTATIONS_PER_SAMPLE),
                                  "instance_token": token("inst", i % (samples * 2)), "visibility_token": "4",
                                  "attribute_tokens": [], "translation": [1.0, 2.0, 0.5], "size": [1.9, 4.5, 1.6],
                                  "rotation": [1.0, 0.0, 0.0, 0.0], "prev": "", "next": "", "num_lidar_pts": 5,
                                  "num_radar_pts": 0} for i in range(samples * ANNOTATIONS_PER_SAMPLE)]
    for name, records in rows.items():
        (tables / f"{name}.json").write_text(json.dumps(records, indent=0))
    return {name: len(records) for name, records in rows.items()}


def measure(root: str, loader: str) -> dict:
    start = time.perf_counter()
    if loader == "devkit":
        from nuscenes.nuscenes import NuScenes

        NuScenes(version=VERSION, dataroot=root, verbose=False)
    else:
        from zeroseg3d.datasets.nuscenes import open_tables

        open_tables(Path(root), VERSION)
    return {"loader": loader, "seconds": time.perf_counter() - start}


def main(scale: float = 0.25, rounds: int = 2) -> str:
    work = Path(tempfile.mkdtemp(prefix="zeroseg3d-nuscenes-"))
    try:
        counts = write_tables(work, scale)
        size_mb = sum(p.stat().st_size for p in (work / VERSION).iterdir()) / 1e6
        runs = {"devkit": [], "checked": []}
        for _ in range(rounds):
            for loader in runs:
                out = subprocess.run([sys.executable, __file__, "--measure", str(work), loader],
                                     capture_output=True, text=True, check=True)
                runs[loader].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    devkit, checked = (statistics.median(runs[k]) for k in ("devkit", "checked"))
    write_result("nuscenes_tables", {"scale": scale, "records": counts, "tables_mb": size_mb, "rounds": rounds,
                                     "devkit_s_runs": runs["devkit"], "checked_s_runs": runs["checked"],
                                     "devkit_s": devkit, "checked_s": checked, "ratio": checked / devkit})
    return (f"nuScenes tables ({size_mb:.0f} MB, scale {scale}): the devkit {devkit:.1f} s, checked "
            f"{checked:.1f} s ({checked / devkit:.2f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", nargs=2, metavar=("ROOT", "LOADER"))
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
    else:
        print(main(args.scale, args.rounds))
