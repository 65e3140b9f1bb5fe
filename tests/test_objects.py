"""Pseudo labels consolidated over objects of unlabelled points: known answers."""

import numpy as np

from zeroseg3d.teacher.objects import components, consolidate_objects


def test_components_join_points_closer_than_the_radius():
    xyz = np.array([[0, 0, 0], [0.2, 0, 0], [0.4, 0, 0], [3, 0, 0], [3.1, 0, 0]], float)
    assert components(xyz, 0.25).tolist() == [0, 0, 0, 1, 1]
    assert len(set(components(xyz, 0.1).tolist())) == 5


def test_an_object_takes_its_teacher_majority_everywhere():
    # a "truck" of 5 points (2 out of view), a "sign" of 2 points 3 m away, a labelled pole
    xyz = np.array([[0, 0, 1], [0.2, 0, 1], [0.4, 0, 1], [0.6, 0, 1], [0.8, 0, 1],
                    [3, 0, 2.5], [3.1, 0, 2.5], [3, 0, 1]], float)
    unlabelled = np.array([True] * 7 + [False])
    #               truck: 3 (truck), 9 (sign, wrong), 3, unseen, unseen | sign: 9, unseen | pole
    label = np.array([3, 9, 3, -1, -1, 9, -1, 5])
    conf = np.array([0.8, 0.9, 0.6, 0, 0, 0.7, 0, 0.9])
    out, confidence = consolidate_objects(xyz, unlabelled, label, conf, num_classes=10, radius=0.25)
    assert out.tolist() == [3, 3, 3, 3, 3, 9, 9, -1]
    np.testing.assert_allclose(confidence, [1.4 / 2.3] * 5 + [1.0, 1.0, 0.0], rtol=1e-6)
    # an object the teacher never saw stays unlabelled
    out, _ = consolidate_objects(xyz, unlabelled, np.full(8, -1), conf, num_classes=10, radius=0.25)
    assert (out == -1).all()


def test_a_component_too_large_for_an_object_keeps_the_labels_point_by_point():
    # 100 unlabelled points in a 30 m line (ground joining everything): no majority over it
    xyz = np.c_[np.linspace(0, 30, 100), np.zeros(100), np.zeros(100)]
    label = np.where(np.arange(100) < 60, 1, 2)
    conf = np.full(100, 0.9)
    out, confidence = consolidate_objects(xyz, np.ones(100, bool), label, conf, num_classes=3, radius=0.5)
    assert (out == label).all() and np.allclose(confidence, 0.9)
