"""Pseudo labels consolidated over time: votes in world coordinates, known answers."""

import numpy as np

from zeroseg3d.teacher.temporal import neighbours, vote


def test_neighbours_stay_inside_their_sequence():
    sequences = ["a", "a", "a", "a", "b", "b"]
    assert neighbours(sequences, 1) == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3], [4, 5], [4, 5]]
    assert neighbours(sequences, 0) == [[i] for i in range(6)]


def test_votes_label_points_the_current_frame_did_not_see_and_average_them():
    target = np.array([[0.05, 0.05, 0.05], [5.05, 0.05, 0.05], [9.05, 0.05, 0.05]])
    one_hot = np.eye(4)
    # earlier frames saw the first two places; the current frame sees none of them
    sources = [
        (np.array([[0.06, 0.06, 0.06], [5.06, 0.06, 0.06]]), np.stack([one_hot[2], one_hot[1]])),
        (np.array([[0.07, 0.07, 0.07], [5.07, 0.07, 0.07]]), np.stack([one_hot[2], 0.6 * one_hot[3] + 0.4 * one_hot[0]])),
        (np.zeros((0, 3)), np.zeros((0, 4))),   # a frame that saw nothing
    ]
    hit, probs = vote(target, sources, voxel_size=0.2)
    assert hit.tolist() == [0, 1]
    np.testing.assert_allclose(probs, [one_hot[2], [0.2, 0.5, 0.0, 0.3]], atol=1e-6)
    # a vote below the confidence floor does not count
    hit, probs = vote(target, sources, voxel_size=0.2, min_confidence=0.7)
    np.testing.assert_allclose(probs, [one_hot[2], one_hot[1]], atol=1e-6)


def test_consolidation_moves_labels_with_the_poses(tmp_path):
    """Two frames of a sequence: the second is 10 m further along x; a place the first frame
    labelled is unlabelled in the second and gets its label through the poses."""
    from zeroseg3d.datasets.base import FrameDataset
    from zeroseg3d.datasets.frame import Frame
    from zeroseg3d.datasets.vocabulary import Vocabulary
    from zeroseg3d.teacher.cache import TeacherCache, point_tensors
    from zeroseg3d.teacher.config import TemporalConfig
    from zeroseg3d.teacher.temporal import consolidate

    world_points = np.array([[20.0, 3.0, 1.0], [25.0, -2.0, 0.5]])
    poses = [np.eye(4), np.eye(4)]
    poses[1][0, 3] = 10.0

    class Pair(FrameDataset):
        vocabulary = Vocabulary.load("semantickitti")
        frame_ids = ["s/000000", "s/000001"]

        def load(self, index):
            xyz = world_points - poses[index][:3, 3]
            return Frame(frame_id=self.frame_ids[index], points=np.c_[xyz, np.zeros(2)].astype(np.float32),
                         cameras=[], pose=poses[index])

    cache = TeacherCache(tmp_path, "k")
    probs = np.zeros((2, Pair.vocabulary.num_classes))
    probs[0, 4], probs[0, 5] = 0.9, 0.1
    probs[1, 7], probs[1, 2] = 0.7, 0.3
    cache.save("s/000000", point_tensors(2, np.array([0, 1]), probs))
    cache.save("s/000001", point_tensors(2, np.zeros(0, np.int64), probs[:0]))
    out = consolidate(Pair(), cache, TemporalConfig(window=1, voxel_size=0.3), progress=False)
    second = out.load("s/000001")
    assert second["point_label"].tolist() == [4, 7]
    np.testing.assert_allclose(second["point_conf"].float().numpy(), [0.9, 0.7], atol=1e-3)
    # without a window nothing moves between frames
    alone = consolidate(Pair(), cache, TemporalConfig(window=0, voxel_size=0.3), progress=False)
    assert alone.load("s/000001")["point_label"].tolist() == [-1, -1]
    assert alone.root == out.root and alone.key != out.key
