import math

import numpy as np
import pytest

from zeroseg3d.metrics import confusion_matrix, harmonic_mean, iou_per_class, summarize


def test_confusion_and_iou_by_hand():
    target = np.array([0, 0, 0, 1, 1, 2, -1, -1])
    prediction = np.array([0, 0, 1, 1, 0, 2, 2, 0])
    matrix = confusion_matrix(prediction, target, num_classes=4)
    assert matrix.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    iou = iou_per_class(matrix)
    # class 0: tp 2, fp 1, fn 1 -> 2/4; class 1: tp 1, fp 1, fn 1 -> 1/3; class 2: 1/1; class 3 absent
    np.testing.assert_allclose(iou[:3], [0.5, 1 / 3, 1.0])
    assert math.isnan(iou[3])


def test_absent_classes_are_left_out_of_the_means():
    matrix = np.array([[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    summary = summarize(matrix, ["a", "b", "c", "d"], seen=[0, 1], unseen=[2, 3])
    assert summary["miou"] == pytest.approx(100 * (0.5 + 1 / 3 + 1.0) / 3)
    assert summary["miou_seen"] == pytest.approx(100 * (0.5 + 1 / 3) / 2)
    assert summary["miou_unseen"] == pytest.approx(100.0)
    assert summary["hiou"] == pytest.approx(harmonic_mean(summary["miou_seen"], 100.0))
    assert summary["per_class"]["d"] is None
    # a class in the ground truth but never predicted counts as 0, not absent
    matrix[3, 0] = 5
    assert summarize(matrix, ["a", "b", "c", "d"], [0, 1], [2, 3])["per_class"]["d"] == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in size"):
        confusion_matrix(np.zeros(3), np.zeros(4), 2)
    with pytest.raises(ValueError, match="prediction labels outside"):
        confusion_matrix(np.array([5]), np.array([0]), 2)
    assert harmonic_mean(0.0, 0.0) == 0.0 and math.isnan(harmonic_mean(float("nan"), 3.0))


def test_points_without_a_prediction_count_as_misses():
    # class 0: 2 hits, 1 point the predictor did not see; class 1: 1 hit, 1 taken for class 0
    matrix = np.array([[2, 0, 1], [1, 1, 0]])
    iou = iou_per_class(matrix)
    np.testing.assert_allclose(iou, [2 / 4, 1 / 2])


def test_bootstrap_intervals_resample_streets():
    from zeroseg3d.metrics import resampled_scores, summarize_with_intervals

    # two classes; street "a" is predicted perfectly, street "b" entirely wrong (class 0 as 1)
    perfect = np.array([[10, 0], [0, 10]])
    wrong = np.array([[0, 10], [0, 10]])
    matrices = np.stack([perfect, perfect, wrong])
    units = ["a", "a", "b"]
    scores = resampled_scores(matrices, units, seen=[0], unseen=[1], samples=400, seed=1)
    # a resample holds street a twice, b twice, or one of each: three possible values of class 0
    values = set(np.round(scores["iou"][:, 0], 6))
    assert values <= {100.0, 0.0, round(100 * 20 / 30, 6)}
    assert len(values) == 3
    summary = summarize_with_intervals(matrices, units, ["x", "y"], [0], [1], samples=400, seed=1)
    assert summary["per_class"]["x"] == pytest.approx(100 * 20 / 30)
    low, high = summary["interval"]["per_class"]["x"]
    assert low == pytest.approx(0.0) and high == pytest.approx(100.0)
    assert summary["interval"]["units"] == 2 and summary["interval"]["frames"] == 3
    # each class has 20-40 points in 2 streets: too few to be measurable
    assert summary["support"]["x"] == {"points": 30, "units": 2, "measurable": False}


def test_bootstrap_interval_is_tight_when_streets_agree():
    from zeroseg3d.metrics import summarize_with_intervals

    matrix = np.array([[900, 100], [100, 900]])
    summary = summarize_with_intervals(np.stack([matrix] * 6), [str(i) for i in range(6)], ["x", "y"], [0], [1])
    assert summary["interval"]["miou"] == pytest.approx([summary["miou"]] * 2)
    assert summary["support"]["x"]["measurable"]


def test_paired_difference_resamples_the_same_streets_for_both():
    from zeroseg3d.metrics import paired_difference

    perfect = np.array([[10, 0], [0, 10]])
    wrong = np.array([[0, 10], [0, 10]])
    ids, units = ["a/0", "b/0", "c/0"], ["a", "b", "c"]
    a = {"frame_ids": ids, "units": units, "full": np.stack([perfect, perfect, wrong])}
    b = {"frame_ids": ids, "units": units, "full": np.stack([perfect, wrong, wrong])}
    same = paired_difference(a, a, [0], [1], samples=200)
    assert all((v == 0).all() for v in same.values())
    better = paired_difference(a, b, [0], [1], samples=200)
    # a differs from b only on street b, where it is right: never worse, better whenever b is drawn
    assert (better["miou_seen"] >= 0).all() and (better["miou_seen"] > 0).mean() > 0.5
    with pytest.raises(ValueError, match="different frames"):
        paired_difference(a, {**b, "frame_ids": ["x", "y", "z"]}, [0], [1])


def test_saved_metrics_load_back_with_their_per_frame_matrices(tmp_path):
    from zeroseg3d.engine.evaluate import load_metrics, save_metrics
    from zeroseg3d.metrics import PER_FRAME

    matrices = np.arange(8).reshape(2, 2, 2)
    metrics = {"miou": 50.0, PER_FRAME: {"frame_ids": ["s/0", "s/1"], "units": ["s", "s"],
                                        "full": matrices, "fov": matrices + 1}}
    save_metrics(metrics, tmp_path)
    loaded = load_metrics(tmp_path)
    assert loaded["miou"] == 50.0 and loaded[PER_FRAME]["frame_ids"] == ["s/0", "s/1"]
    np.testing.assert_array_equal(loaded[PER_FRAME]["fov"], matrices + 1)
