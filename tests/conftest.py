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


def thin_scans(world: Path, every: int) -> None:
    """Keep every ``every``-th point of each scan of a SemanticKITTI-layout ``world`` (and its
    label): the same streets and classes at a fraction of the per-point work."""
    for scan in world.glob("sequences/*/velodyne/*.bin"):
        np.fromfile(scan, np.float32).reshape(-1, 4)[::every].tofile(scan)
        label = scan.parent.parent / "labels" / scan.with_suffix(".label").name
        if label.is_file():
            np.fromfile(label, np.uint32)[::every].tofile(label)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny world (street 00 to train on, 08 to validate on; a quarter of each scan's points),
    a tiny random CLIP and its filled teacher cache: (root, config path, world root)."""
    pytest.importorskip("spconv")
    from clip_fixtures import TINY_VIT, write_model_config
    from zeroseg3d.cli import main

    root = tmp_path_factory.mktemp("engine")
    world = root / "world"
    main(["world", "generate", "--out", str(world), "--sequences", "1", "--frames", "4", "--seed", "4", "--workers", "1"])
    main(["world", "generate", "--out", str(world), "--sequences", "1", "--start", "8", "--frames", "1",
          "--seed", "4", "--workers", "1"])
    thin_scans(world, 4)
    model_config = write_model_config(root, "zs3d-engine-tiny", TINY_VIT)
    config_path = root / "tiny.yaml"
    config_path.write_text(f"""
_base_: {REPO / 'configs' / 'world.yaml'}
data: {{root: {world}, voxel_size: 0.3, sequences: ['00']}}
teacher: {{model_config: {model_config}, checkpoint: null, random_init: true, readout: tokens, sliding: false,
          short_side: 32, scales: [1.0], cache_dir: {root / 'cache'}}}
train: {{epochs_guided: 2, epochs_self: 1, self_every: 1, batch_size: 2, log_every: 1, warmup_steps: 2}}
""")
    assert main(["teacher", str(config_path), "--no-report"]) == 0
    assert main(["teacher", str(config_path), "--split", "val", "--no-report"]) == 0
    return root, config_path, world


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """A student trained one epoch on the tiny world (read it; copy it before changing it)."""
    from zeroseg3d.config import load_config
    from zeroseg3d.engine.train import run_training

    root, config_path, _ = tiny_run
    run_training(load_config(config_path, ["run.eval_split=null", "train.epochs_guided=1", "train.epochs_self=0"]),
                 root / "tiny_student", progress=False)
    return root / "tiny_student" / "checkpoints" / "guided.pt"
