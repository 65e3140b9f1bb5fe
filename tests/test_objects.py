"""Pseudo labels consolidated over objects of unlabelled points: known answers."""

import numpy as np

from zeroseg3d.teacher.objects import components, consolidate_objects, ground_mask


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


def test_votes_weighted_by_the_unseen_mass_outvote_a_confident_seen_part():
    # a rider (3 points, the teacher: bicyclist 0.6 of the unseen mass, itself 0.9) on a bicycle
    # (4 points: the teacher says the seen class bicycle, and among the unseen classes motorcycle
    # with confidence 0.8, from a mass of only 0.2)
    xyz = np.c_[np.arange(7) * 0.2, np.zeros(7), np.ones(7)]
    label = np.array([5, 5, 5, 2, 2, 2, 2])
    conf = np.array([0.6, 0.6, 0.6, 0.8, 0.8, 0.8, 0.8])
    mass = np.array([0.9, 0.9, 0.9, 0.2, 0.2, 0.2, 0.2])
    out, _ = consolidate_objects(xyz, np.ones(7, bool), label, conf, num_classes=6, radius=0.25)
    assert (out == 2).all()    # 3.2 votes for motorcycle against 1.8
    out, confidence = consolidate_objects(xyz, np.ones(7, bool), label, conf, num_classes=6, radius=0.25,
                                          vote_weight=mass ** 2)
    assert (out == 5).all()    # 1.458 against 0.128
    np.testing.assert_allclose(confidence, 1.458 / (1.458 + 0.128), rtol=1e-6)

    # agreeing, the weights can only take the label away: the bicycle's majority stands, with
    # the smaller of its shares (3.2 / 5 unweighted, 0.128 / 1.586 weighted): under any threshold
    out, confidence = consolidate_objects(xyz, np.ones(7, bool), label, conf, num_classes=6, radius=0.25,
                                          vote_weight=mass ** 2, vote_agree=True)
    assert (out == 2).all()
    np.testing.assert_allclose(confidence, 0.128 / 1.586, rtol=1e-6)


def test_agreeing_weights_cannot_hand_an_object_to_another_class():
    # a truck of 10 points: 8 vote truck (3) with 0.6 on a mass of 0.3, 2 vote bicyclist (5)
    # with 0.9 on a mass of 0.95 (the teacher's confident mistake on a small part)
    xyz = np.c_[np.arange(10) * 0.2, np.zeros(10), np.ones(10)]
    label = np.array([3] * 8 + [5] * 2)
    conf = np.array([0.6] * 8 + [0.9] * 2)
    mass = np.array([0.3] * 8 + [0.95] * 2)
    weighted = 8 * 0.6 * 0.3 ** 2, 2 * 0.9 * 0.95 ** 2        # truck 0.432, bicyclist 1.6245
    out, confidence = consolidate_objects(xyz, np.ones(10, bool), label, conf, num_classes=6, radius=0.25,
                                          vote_weight=mass ** 2)
    assert (out == 5).all()    # the weights alone flip it
    np.testing.assert_allclose(confidence, weighted[1] / sum(weighted), rtol=1e-6)
    out, confidence = consolidate_objects(xyz, np.ones(10, bool), label, conf, num_classes=6, radius=0.25,
                                          vote_weight=mass ** 2, vote_agree=True)
    assert (out == 3).all()    # 4.8 unweighted votes against 1.8
    np.testing.assert_allclose(confidence, weighted[0] / sum(weighted), rtol=1e-6)
    # where both agree the confidence is the smaller share: here the unweighted 4.8 / 6.6, as
    # the weights (truck 4.8 against bicyclist 0.45) favour the truck more
    mass[:8], mass[8:] = 1.0, 0.5
    out, confidence = consolidate_objects(xyz, np.ones(10, bool), label, conf, num_classes=6, radius=0.25,
                                          vote_weight=mass ** 2, vote_agree=True)
    assert (out == 3).all()
    np.testing.assert_allclose(confidence, 4.8 / 6.6, rtol=1e-6)
    # without weights the rule has nothing to agree with
    out, confidence = consolidate_objects(xyz, np.ones(10, bool), label, conf, num_classes=6, radius=0.25,
                                          vote_agree=True)
    assert (out == 3).all()
    np.testing.assert_allclose(confidence, 4.8 / 6.6, rtol=1e-6)


def test_a_component_too_large_for_an_object_keeps_the_labels_point_by_point():
    # 100 unlabelled points in a 30 m line (ground joining everything): no majority over it
    xyz = np.c_[np.linspace(0, 30, 100), np.zeros(100), np.zeros(100)]
    label = np.where(np.arange(100) < 60, 1, 2)
    conf = np.full(100, 0.9)
    out, confidence = consolidate_objects(xyz, np.ones(100, bool), label, conf, num_classes=3, radius=0.5)
    assert (out == label).all() and np.allclose(confidence, 0.9)


def _street_without_labels():
    """A 20 m x 20 m ground (0.2 m grid) on a 2% slope with two boxes standing on it: a "car"
    (4 x 2 x 1.5 m; class 1) and a "sign" plate 2 m up (0.6 x 0.1 x 0.6 m; class 2)."""
    gx, gy = np.meshgrid(np.arange(0, 20, 0.2), np.arange(0, 20, 0.2))
    ground = np.c_[gx.ravel(), gy.ravel(), 0.02 * gx.ravel()]
    bx, by, bz = np.meshgrid(np.arange(5, 9, 0.2), np.arange(5, 7, 0.2), np.arange(0.3, 1.8, 0.2))
    car = np.c_[bx.ravel(), by.ravel(), bz.ravel() + 0.02 * bx.ravel()]
    sx, sz = np.meshgrid(np.arange(14, 14.6, 0.1), np.arange(2.0, 2.6, 0.1))
    sign = np.c_[sx.ravel(), np.full(sx.size, 12.0), sz.ravel() + 0.28]
    xyz = np.concatenate([ground, car, sign])
    truth = np.concatenate([np.zeros(len(ground), int), np.ones(len(car), int), np.full(len(sign), 2)])
    return xyz, truth


def test_ground_mask_finds_the_ground_under_and_around_objects_on_a_slope():
    xyz, truth = _street_without_labels()
    ground = ground_mask(xyz, 0.2)
    assert ground[truth == 0].all()
    assert not ground[truth > 0].any()     # the car's roof is not ground: the window is wider than it


def test_without_3d_labels_objects_stand_out_of_the_ground_and_take_their_majority():
    xyz, truth = _street_without_labels()
    rng = np.random.default_rng(0)
    # the teacher: the ground right, the car seen for 60% of its points (a quarter of those
    # wrongly "sign"), the sign for half of its points, and nothing else
    label = np.where(truth == 0, 0, -1)
    car = np.flatnonzero(truth == 1)
    seen = rng.choice(car, int(0.6 * len(car)), replace=False)
    label[seen] = np.where(rng.random(len(seen)) < 0.25, 2, 1)
    sign = np.flatnonzero(truth == 2)
    label[sign[::2]] = 2
    conf = np.where(label >= 0, 0.8, 0.0)
    everything = np.ones(len(xyz), bool)
    # the ground joins the car into one component too large for an object: labels per point
    out, _ = consolidate_objects(xyz, everything, label, conf, 3, radius=0.5)
    assert (out[truth < 2] == label[truth < 2]).all()
    out, confidence = consolidate_objects(xyz, everything, label, conf, 3, radius=0.5, ground_height=0.2)
    assert (out[truth == 1] == 1).all() and (out[truth == 2] == 2).all()
    assert (out[truth == 0] == 0).all() and np.allclose(confidence[truth == 0], 0.8)
