import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZEROSEG3D_SHARED", REPO.parent / "shared"))
KITTI_SAMPLE = SHARED / "data" / "semantickitti"


@pytest.fixture
def kitti_root() -> Path:
    if not (KITTI_SAMPLE / "sequences" / "00" / "velodyne").is_dir():
        pytest.skip(f"real SemanticKITTI sample frames not found at {KITTI_SAMPLE} "
                    "(../shared is beside the repository in CI; set ZEROSEG3D_SHARED elsewhere)")
    return KITTI_SAMPLE


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# Real KITTI sequence 00 calibration (P2 and Tr), used to build small synthetic sequences.
KITTI_P2 = [7.188560e02, 0.0, 6.071928e02, 4.538225e01, 0.0, 7.188560e02, 1.852157e02,
            -1.130887e-01, 0.0, 0.0, 1.0, 3.779761e-03]
KITTI_TR = [4.276802e-04, -9.999672e-01, -8.084491e-03, -1.198459e-02, -7.210626e-03,
            8.081198e-03, -9.999413e-01, -5.403984e-02, 9.999738e-01, 4.859485e-04,
            -7.206933e-03, -2.921968e-01]


def write_kitti_sequence(folder: Path, scans: list[np.ndarray], labels: list[np.ndarray] | None = None,
                         calib_extra: str = "", images: list | None = None) -> Path:
    """A small SemanticKITTI sequence folder: velodyne/, labels/, calib.txt, optional image_2/."""
    (folder / "velodyne").mkdir(parents=True)
    for i, scan in enumerate(scans):
        scan.astype(np.float32).tofile(folder / "velodyne" / f"{i:06d}.bin")
    if labels is not None:
        (folder / "labels").mkdir()
        for i, label in enumerate(labels):
            label.astype(np.uint32).tofile(folder / "labels" / f"{i:06d}.label")
    if images is not None:
        from PIL import Image

        (folder / "image_2").mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / "image_2" / f"{i:06d}.png")
    p2 = " ".join(f"{v:.12e}" for v in KITTI_P2)
    tr = " ".join(f"{v:.12e}" for v in KITTI_TR)
    (folder / "calib.txt").write_text(f"P2: {p2}\nTr: {tr}\n{calib_extra}")
    return folder
