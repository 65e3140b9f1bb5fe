"""The main job end to end, in its quick variant: every stage runs, the report folder is
complete, the demo teacher learns, and the student taught by it recognises unseen classes, which
seen-only training does not (engine/demo.demo_checks; its floors are set from the quick demo and
its seen-only twin over worlds 0-4, `python benchmarks/quick_demo.py`)."""

import json

from zeroseg3d.engine.demo import QUICK, SEEN_ONLY, demo_checks, run_demo, seen_only_config, world_config


def test_quick_demo_teacher_learns_and_its_student_recognises_unseen_classes(tmp_path):
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
    # the teacher learnt and its student recognises the unseen classes (seed 0: unseen mIoU 18.7
    # [16.0, 21.2]; with training seeds 1 and 2 on the same world and teacher 17.3 [15.0, 18.2] and
    # 17.1 [10.3, 25.5], benchmarks/results/quick_demo.md), each check against its floor
    losses = json.loads((out / "teacher" / "zs3d-world-clip.train.json").read_text())
    assert metrics["checks"] == demo_checks(quality, losses, metrics)
    assert len(metrics["checks"]) == 4 and all(metrics["checks"].values()), (metrics["checks"], quality,
                                                                             metrics["interval"]["miou_unseen"])
    # and on this world more than the floor: half of the lowest of the three training seeds' figures
    assert metrics["miou_unseen"] > 8.0, metrics["miou_unseen"]
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
    assert "## Checks" in report and "- passed: student unseen mIoU above 6 beyond its interval" in report


def test_demo_checks_against_their_floors():
    teacher = {"crop_accuracy": 0.2, "chance": 0.06, "pixel_miou": 0.16}
    record = {"loss_curve": [[3.0, 2.0, 1.0]], "final_losses": {"i2t": 2.6}}
    student = {"interval": {"miou_unseen": [6.5, 12.0]}, "unseen_classes": ["truck"]}
    assert all(demo_checks(teacher, record, student).values())
    failing = demo_checks({**teacher, "crop_accuracy": 0.17, "pixel_miou": 0.15},
                          {**record, "final_losses": {"i2t": 2.75}},
                          {**student, "interval": {"miou_unseen": [5.9, 30.0]}})
    assert not any(failing.values()) and len(failing) == 4
    # no training record (a teacher from elsewhere): no loss check; no interval: not passed
    checks = demo_checks(teacher, None, {**student, "interval": {"miou_unseen": None}})
    assert len(checks) == 3 and checks["student unseen mIoU above 6 beyond its interval"] is False
    # every class seen in 3D: nothing for the student's check to measure
    assert len(demo_checks(teacher, record, {**student, "unseen_classes": []})) == 3


def test_the_seen_only_twin_drops_every_teacher_term_and_keeps_the_steps(tmp_path):
    full, twin = world_config(tmp_path, QUICK, 0), seen_only_config(tmp_path, QUICK, 0)
    assert SEEN_ONLY and not (twin.loss.pseudo or twin.loss.mcfa_global or twin.loss.mcfa_local)
    assert twin.loss.unseen_mass_weight == 0 and full.loss.pseudo and full.loss.mcfa_global
    assert twin.train.epochs_self == 0
    assert twin.train.epochs_guided == full.train.epochs_guided + full.train.epochs_self
    assert twin.data == full.data and twin.run.seed == full.run.seed
