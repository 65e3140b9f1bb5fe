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
