"""The main job end to end, in its quick variant: every stage runs, the report folder is
complete, the demo teacher learns, and the student taught by it recognises unseen classes that seen-only
training cannot. Seen-only training predicts next to no unseen class (unseen mIoU 0.0-0.7 over seeds
0-2, `python benchmarks/quick_demo.py`); the quick demo's students 18.7 (seed 0, this test), 26.3 and
4.3: on so few validation frames the student is measured against its own seen-only twin, not a
fixed bar."""

import json

from zeroseg3d.engine.demo import QUICK, run_demo, seen_only_config, world_config
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
    quality = json.loads((out / "teacher" / "zs3d-world-clip.quality.json").read_text())
    assert quality["readout"]["scales"] == world_config(out, QUICK, 0).teacher.scales
    assert quality["readout"]["sliding"] is True
    # the teacher learnt: on the held-out streets it names crops far above chance and reads pixels
    # as the untrained model cannot (seeds 0-2, benchmarks/quick_demo.py: untrained crop accuracy
    # 0.06-0.09 against a chance of 0.06 and pixel mIoU 0.006-0.024; trained 0.58-0.66 and
    # 0.39-0.40), and its contrastive loss fell
    assert quality["crop_accuracy"] > 3 * quality["chance"] and quality["pixel_miou"] > 0.15, quality
    losses = json.loads((out / "teacher" / "zs3d-world-clip.train.json").read_text())
    assert losses["final_losses"]["i2t"] < 0.9 * losses["loss_curve"][0][0], losses["final_losses"]
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
    baseline = run_training(seen_only_config(out, QUICK, 0), tmp_path / "seen_only", progress=False)["metrics"]
    assert metrics["miou_unseen"] > baseline["miou_unseen"] + 3.0, (metrics["miou_unseen"], baseline["miou_unseen"])
    # beyond noise: the lower end of the student's interval over the 3 validation streets is
    # above the upper end of seen-only training's
    assert metrics["interval"]["miou_unseen"][0] > baseline["interval"]["miou_unseen"][1], (
        metrics["interval"]["miou_unseen"], baseline["interval"]["miou_unseen"])
