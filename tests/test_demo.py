"""The main job end to end, in its quick variant: every stage runs, the report folder is
complete, and the student taught by the teacher recognises unseen classes that seen-only
training cannot (seen-only training predicts next to no unseen class: its unseen mIoU was
0.0-0.9 in three runs, the student's about 20)."""

import json

from zeroseg3d.engine.demo import QUICK, run_demo, world_config
from zeroseg3d.engine.train import run_training


def test_quick_demo_beats_seen_only_training_on_unseen_classes(tmp_path):
    out = tmp_path / "demo"
    metrics = run_demo(out, quick=True, seed=0, progress=False)
    for name in ("report.md", "metrics.json", "metrics_per_frame.npz", "iou_per_class.png", "training_curves.png",
                 "confusion.png", "example_08_000000_bev.png", "example_08_000000_image_2.png",
                 "student/checkpoints/self.pt",
                 "teacher/zs3d-world-clip.safetensors", "teacher/cache/quality_val.json"):
        assert (out / name).is_file(), name
    # the teacher's 2D quality records the read-out it was measured with: that of the pseudo labels
    readout = json.loads((out / "teacher" / "zs3d-world-clip.quality.json").read_text())["readout"]
    assert readout["scales"] == world_config(out, QUICK, 0).teacher.scales and readout["sliding"] is True
    saved = json.loads((out / "metrics.json").read_text())
    assert {"miou", "miou_seen", "miou_unseen", "hiou", "fov", "per_class", "seconds", "stages"} <= set(saved)
    assert saved["miou"] == metrics["miou"] and saved["seconds"] > 0
    assert set(saved["stages"]) == {"world", "teacher_training", "teacher_2d_quality", "teacher_cache",
                                    "student_training_and_eval", "pictures"}
    report = (out / "report.md").read_text()
    assert "Time per stage" in report and "motorcycle (unseen)" in report
    assert "![confusion matrix](confusion.png)" in report and "example_08_000000_image_2.png" in report
    # student and teacher side by side, each figure with its interval over streets
    assert "| teacher pseudo labels | camera view |" in report and "95% intervals" in report
    assert set(saved["interval"]) >= {"miou", "miou_unseen", "per_class"}
    assert saved["teacher"]["points_3d_camera_view"]["interval"]["miou"] is not None
    # the same world, data and number of epochs, without the teacher
    epochs = QUICK.epochs_guided + QUICK.epochs_self
    seen_only = world_config(out, QUICK, 0, ["loss.pseudo=false", "loss.unseen_mass_weight=0",
                                             "loss.mcfa_global=false", "loss.mcfa_local=false",
                                             "train.epochs_self=0", f"train.epochs_guided={epochs}"])
    baseline = run_training(seen_only, tmp_path / "seen_only", progress=False)["metrics"]
    assert metrics["miou_unseen"] > baseline["miou_unseen"] + 3.0, (metrics["miou_unseen"], baseline["miou_unseen"])
    # beyond noise: the lower end of the student's interval over the 3 validation streets is
    # above the upper end of seen-only training's
    assert metrics["interval"]["miou_unseen"][0] > baseline["interval"]["miou_unseen"][1], (
        metrics["interval"]["miou_unseen"], baseline["interval"]["miou_unseen"])
