"""zeroseg3d data inspect: what a reader sees in a frame."""

from __future__ import annotations

import json

import numpy as np


def frame_summary(frame, vocabulary) -> dict:
    """points, their bounds (metres, as read: add ``origin`` for a georeferenced file's own
    coordinates) and intensity range (normalised to 0..1 on read), label histogram by class
    name, per-camera projected and visible counts."""
    from zeroseg3d.geometry.config import OcclusionConfig, PairingConfig
    from zeroseg3d.geometry.projection import pair_points

    labels: dict[str, int] = {}
    if frame.labels is not None:
        ids, counts = np.unique(frame.labels, return_counts=True)
        for class_id, count in zip(ids.tolist(), counts.tolist()):
            name = vocabulary.names[class_id] if class_id >= 0 else "unlabeled"
            labels[name] = labels.get(name, 0) + count
    # "Projects into the image": positive depth and inside the image, no occlusion test.
    projected = pair_points(frame.xyz, frame.cameras,
                            PairingConfig(min_depth=1e-6, occlusion=OcclusionConfig(enabled=False)))
    visible = pair_points(frame.xyz, frame.cameras, PairingConfig())
    cameras, details = {}, {}
    for index, camera in enumerate(frame.cameras):
        cameras[camera.name] = int((projected.cam_idx == index).sum())
        details[camera.name] = {
            "image_size": list(camera.image_size),
            "visible_after_occlusion": int((visible.cam_idx == index).sum()),
            "image": None if camera.image_path is None else str(camera.image_path),
        }
    xyz, intensity = frame.points[:, :3], frame.points[:, 3]
    return {"frame_id": frame.frame_id, "points": frame.num_points,
            "bounds": {"min": xyz.min(axis=0).round(3).tolist(), "max": xyz.max(axis=0).round(3).tolist()},
            "origin": None if frame.origin is None else np.asarray(frame.origin).tolist(),
            "intensity": [round(float(intensity.min()), 4), round(float(intensity.max()), 4)],
            "labels": dict(sorted(labels.items(), key=lambda kv: -kv[1])),
            "cameras": cameras, "camera_details": details}


def select_frame(dataset, frame: str | None) -> int:
    if frame is None:
        return 0
    if frame in dataset.frame_ids:
        return dataset.frame_ids.index(frame)
    matches = [i for i, f in enumerate(dataset.frame_ids) if f.split("/")[-1] == frame]
    if len(matches) == 1:
        return matches[0]
    if frame.isdigit() and not matches and int(frame) < len(dataset):
        return int(frame)
    return dataset.index_of(frame)  # raises with the known ids


def run_inspect(args) -> int:
    from zeroseg3d.datasets import open_path

    dataset = open_path(args.path, vocabulary=args.vocabulary)
    frame = dataset[select_frame(dataset, args.frame)]
    summary = frame_summary(frame, dataset.vocabulary)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"frame {summary['frame_id']}  ({frame.source})  of {len(dataset)} frames")
    print(f"points: {summary['points']}")
    low, high = summary["bounds"]["min"], summary["bounds"]["max"]
    extent = ", ".join(f"{axis} {lo:.2f}..{hi:.2f}" for axis, lo, hi in zip("xyz", low, high))
    print(f"bounds (m): {extent}")
    if summary["origin"] is not None:
        print(f"origin: {' '.join(f'{v:.0f}' for v in summary['origin'])} (subtracted from the file's "
              f"georeferenced coordinates; predictions hold them again)")
    print(f"intensity (normalised to 0..1): {summary['intensity'][0]:.3f}..{summary['intensity'][1]:.3f}")
    if summary["labels"]:
        print(f"labels ({dataset.vocabulary.name} classes after the learning map):")
        for name, count in summary["labels"].items():
            print(f"  {name:<16} {count:>9}  {100 * count / summary['points']:5.1f}%")
    else:
        print("labels: none")
    for name, count in summary["cameras"].items():
        detail = summary["camera_details"][name]
        width, height = detail["image_size"]
        print(f"camera {name} ({width}x{height}, image {'present' if detail['image'] else 'absent'}):"
              f" {count} points project into the image, "
              f"{detail['visible_after_occlusion']} visible after the occlusion test")
    if not summary["cameras"]:
        print("cameras: none")
    if args.pictures:
        for path in calibration_pictures(frame, dataset.vocabulary, args.pictures):
            print(f"wrote {path}")
    return 0


def calibration_pictures(frame, vocabulary, folder) -> list:
    """Per camera with an image: the points it sees coloured by depth on the image (with a right
    calibration, depth edges fall on object edges) and, where the scan has labels, by label."""
    from pathlib import Path

    from zeroseg3d.cli import output_folder
    from zeroseg3d.engine.export import palette
    from zeroseg3d.engine.visualize import camera_overlay, depth_overlay
    from zeroseg3d.geometry.projection import pair_points

    folder = output_folder(folder)
    pairing = pair_points(frame.xyz, frame.cameras)
    stem = frame.frame_id.replace("/", "_")
    written = []
    for index, camera in enumerate(frame.cameras):
        image = camera.load_image()
        if image is None:
            continue
        rows = pairing.cam_idx == index
        written.append(depth_overlay(image, pairing.uv[rows], pairing.depth[rows],
                                     Path(folder) / f"{stem}_{camera.name}_depth.png"))
        if frame.labels is not None:
            labels = frame.labels[pairing.point_idx[rows]]
            written.append(camera_overlay(image, pairing.uv[rows], labels, palette(vocabulary.names),
                                          Path(folder) / f"{stem}_{camera.name}_labels.png",
                                          names=vocabulary.names, depth=pairing.depth[rows]))
    return written


def add_parser(commands) -> None:
    data = commands.add_parser("data", help="inspect datasets and scans")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    inspect = sub.add_parser("inspect", help="summarise one frame of a dataset, sequence or file")
    inspect.add_argument("path", help="SemanticKITTI root or sequence folder, or a scan file/folder")
    inspect.add_argument("--frame", help="frame id (e.g. 00/000000 or 000000) or index; default first")
    inspect.add_argument("--vocabulary", help="vocabulary name or YAML (default semantickitti)")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--pictures", metavar="FOLDER",
                         help="write per camera the points projected on its image, coloured by depth and by "
                         "label: the calibration check")
    inspect.set_defaults(run=run_inspect)
