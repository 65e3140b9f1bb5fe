"""Hand-checked geometry: projection, occlusion, voxels, augmentation, collate."""


import numpy as np
import pytest

from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.pipeline import SampleBuilder, collate
from zeroseg3d.geometry.augment import apply_transform
from zeroseg3d.geometry.config import AugmentConfig
from zeroseg3d.geometry.config import OcclusionConfig, PairingConfig
from zeroseg3d.geometry.projection import erode, pair_points, project_points
from zeroseg3d.geometry.transforms import invert_transform, make_transform, quaternion_to_matrix
from zeroseg3d.geometry.voxelize import voxelize

K = np.array([[100.0, 0.0, 64.0], [0.0, 100.0, 32.0], [0.0, 0.0, 1.0]])
# LiDAR x forward, y left, z up -> camera x right, y down, z forward
T_CAM_FROM_LIDAR = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])


def camera(size=(128, 64)):
    return Camera("front", K, T_CAM_FROM_LIDAR, size)


def test_point_on_optical_axis_lands_on_principal_point():
    uv, depth = project_points(np.array([[7.0, 0.0, 0.0]]), K, T_CAM_FROM_LIDAR)
    np.testing.assert_allclose(uv[0], [64.0, 32.0])
    assert depth[0] == pytest.approx(7.0)
    # one metre to the left at 10 m depth: 10 pixels left of the centre (f=100)
    uv, _ = project_points(np.array([[10.0, 1.0, 0.0]]), K, T_CAM_FROM_LIDAR)
    np.testing.assert_allclose(uv[0], [54.0, 32.0])


def test_points_behind_camera_near_or_outside_are_dropped():
    xyz = np.array([[-5.0, 0, 0], [0.5, 0, 0], [5.0, 0, 0], [5.0, 10.0, 0]])
    pairing = pair_points(xyz, [camera()], PairingConfig(min_depth=1.0))
    assert pairing.point_idx.tolist() == [2]


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (40, 3), (57, 129)])
def test_erosion_is_scipys_minimum_filter_with_an_infinite_border(shape):
    from scipy.ndimage import minimum_filter

    rng = np.random.default_rng(shape[0])
    for radius in range(6):
        image = np.where(rng.random(shape) < 0.1, rng.uniform(1, 80, shape), np.inf).astype(np.float32)
        expected = minimum_filter(image, size=2 * radius + 1, mode="constant", cval=np.inf)
        np.testing.assert_array_equal(erode(image, radius), expected)


def test_point_behind_another_is_occluded_and_neighbours_are_not():
    xyz = np.array([
        [5.0, 0.0, 0.0],     # front
        [20.0, 0.0, 0.0],    # same pixel, much farther: hidden
        [20.0, 0.2, 0.0],    # 1 px away from the front point, farther: hidden (radius 2)
        [5.1, 0.0, 0.01],    # same surface as the front point within tolerance: visible
        [20.0, 1.0, 0.0],    # 5 px away from everything: visible
    ])
    on = pair_points(xyz, [camera()], PairingConfig(occlusion=OcclusionConfig(radius_px=2)))
    assert sorted(on.point_idx.tolist()) == [0, 3, 4]
    off = pair_points(xyz, [camera()], PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    assert sorted(off.point_idx.tolist()) == [0, 1, 2, 3, 4]


def test_pixel_bounds_follow_the_centre_convention():
    # u = 64 + 100 * (-y)/x ; at x=10: y=-6.354 -> u=127.54 (outside a 128-wide image), y=-6.345 -> 127.45
    xyz = np.array([[10.0, -6.354, 0.0], [10.0, -6.345, 0.0]])
    pairing = pair_points(xyz, [camera()], PairingConfig(occlusion=OcclusionConfig(enabled=False)))
    assert pairing.point_idx.tolist() == [1]


def test_multiple_cameras_index_their_pairs():
    back = Camera("back", K, T_CAM_FROM_LIDAR @ make_transform(np.diag([-1.0, -1.0, 1.0]), [0, 0, 0]),
                  (128, 64))
    xyz = np.array([[5.0, 0, 0], [-5.0, 0, 0]])
    pairing = pair_points(xyz, [camera(), back])
    assert pairing.point_idx.tolist() == [0, 1] and pairing.cam_idx.tolist() == [0, 1]
    np.testing.assert_allclose(pairing.uv, [[64, 32], [64, 32]], atol=1e-5)


def test_quaternion_and_inverse():
    half = np.sqrt(0.5)
    rotation = quaternion_to_matrix([half, 0.0, 0.0, half])  # 90 degrees about z
    np.testing.assert_allclose(rotation @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)
    transform = make_transform(rotation, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(invert_transform(transform) @ transform, np.eye(4), atol=1e-12)


def test_voxelize():
    xyz = np.array([[0.01, 0.01, 0.01], [0.04, 0.02, 0.03], [0.06, 0.0, 0.0], [-0.01, 0.0, 0.0]])
    vox = voxelize(xyz, 0.05)
    # voxels: {-1,0,0} for the last point, {0,0,0} for the first two, {1,0,0} for the third
    assert vox.num_voxels == 3
    assert vox.point_to_voxel[0] == vox.point_to_voxel[1] != vox.point_to_voxel[2]
    np.testing.assert_array_equal(vox.coords[vox.point_to_voxel], [[1, 0, 0], [1, 0, 0], [2, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(vox.origin, [-0.05, 0.0, 0.0])
    np.testing.assert_array_equal(vox.counts[vox.point_to_voxel], [2, 2, 1, 1])



@pytest.mark.parametrize("spread", [20.0, 2000.0])   # 2 km at 0.1 m: more grid cells than int32 keys hold
def test_voxelize_is_the_sorted_unique_of_integer_voxel_keys(rng, spread):
    # a scan-like cloud (negative coordinates, float32 input, points sharing voxels): voxels in
    # key order, each point in the voxel its floored coordinates name, counts that add up
    xyz = rng.normal(0, spread, (5000, 3)).astype(np.float32)
    xyz[2500:] = xyz[:2500] + 0.01   # many points share a voxel with another
    vox = voxelize(xyz, 0.1)
    assert np.prod(vox.coords.max(0) + 1.0) > 2 ** 31 or spread == 20.0
    grid = np.floor((xyz.astype(np.float64) - vox.origin) / 0.1).astype(np.int64)
    np.testing.assert_array_equal(vox.coords[vox.point_to_voxel], grid)
    keys = [tuple(c) for c in vox.coords]
    assert keys == sorted(set(keys))
    assert vox.coords.min() == 0 and vox.coords.dtype == np.int32 and vox.point_to_voxel.dtype == np.int64
    np.testing.assert_array_equal(vox.counts, np.bincount(vox.point_to_voxel, minlength=vox.num_voxels))


def test_projection_equals_the_matrix_form_for_any_camera(rng):
    # a general camera (rotation about all axes, skewed intrinsics) and float32 points given as
    # a strided view, as frames hold them
    q = rng.normal(size=4)
    T = make_transform(quaternion_to_matrix(q / np.linalg.norm(q)), rng.normal(0, 2, 3))
    K_general = np.array([[700.0, 3.0, 610.0], [0.0, 690.0, 180.0], [0.0, 0.0, 1.0]])
    points = rng.normal(0, 15, (1000, 4)).astype(np.float32)
    uv, depth = project_points(points[:, :3], K_general, T)
    cam = points[:, :3].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    pixels = cam @ K_general.T
    np.testing.assert_allclose(depth, cam[:, 2], rtol=1e-12, atol=1e-12)
    front = cam[:, 2] > 0.1
    np.testing.assert_allclose(uv[front], pixels[front, :2] / pixels[front, 2:3], rtol=1e-9, atol=1e-9)

def _frame(rng, n=2000):
    xyz = np.concatenate([rng.uniform([2, -8, -2], [30, 8, 2], (n, 3))])
    points = np.concatenate([xyz, rng.uniform(0, 1, (n, 1))], axis=1).astype(np.float32)
    labels = rng.integers(-1, 5, n)
    return Frame("f", points, [camera()], labels=labels)


def test_augmentation_keeps_the_pairing(rng):
    frame = _frame(rng)
    plain = SampleBuilder(0.1)(frame)
    augmented = SampleBuilder(0.1, augment=AugmentConfig(jitter_sigma=0.0))(frame, np.random.default_rng(3))
    for key in ("point_idx", "cam_idx", "uv", "depth"):
        np.testing.assert_array_equal(getattr(plain.pairing, key), getattr(augmented.pairing, key))
    assert not np.allclose(plain.points, augmented.points)
    # the recorded transform takes the original points to the augmented ones, and back
    np.testing.assert_allclose(apply_transform(frame.xyz, augmented.transform), augmented.points[:, :3], atol=1e-4)
    back = apply_transform(augmented.points[:, :3], np.linalg.inv(augmented.transform))
    np.testing.assert_allclose(back, frame.xyz, atol=1e-4)
    # undoing the augmentation and projecting again gives the recorded pixels
    uv, _ = project_points(back[augmented.pairing.point_idx], K, T_CAM_FROM_LIDAR)
    np.testing.assert_allclose(uv, augmented.pairing.uv, atol=1e-2)



def test_mirror_only_augmentation_gives_the_four_mirror_images(rng):
    """The world's setting: no rotation, scale or jitter; each sample is the street itself or
    its mirror image front <-> back and/or left <-> right, about equally often."""
    from zeroseg3d.geometry.augment import augmented, draw_augmentation

    config = AugmentConfig(rotate_z_deg=0.0, scale_min=1.0, scale_max=1.0, jitter_sigma=0.0)
    points = _frame(rng, 50).points
    seen = []
    for seed in range(400):
        draw = draw_augmentation(config, np.random.default_rng(seed))
        out, transform = augmented(points, draw), draw.transform
        signs = np.diag(transform)[:3]
        assert np.allclose(np.abs(transform[:3, :3]), np.eye(3)) and signs[2] == 1.0
        np.testing.assert_array_equal(out[:, :3], points[:, :3] * signs)   # exact: no rounding drift
        np.testing.assert_array_equal(out[:, 3], points[:, 3])             # intensity untouched
        seen.append(tuple(signs[:2]))
    counts = {image: seen.count(image) for image in [(1, 1), (-1, 1), (1, -1), (-1, -1)]}
    assert all(70 <= n <= 130 for n in counts.values()), counts


def test_intensity_dropout_zeroes_the_drawn_share_of_scans_and_nothing_else(rng):
    import dataclasses

    from zeroseg3d.geometry.augment import augmented, draw_augmentation, random_transform

    points = _frame(rng, 50).points
    draws = [draw_augmentation(AugmentConfig(intensity_dropout=0.25), np.random.default_rng(s)) for s in range(800)]
    dropped = [d.drop_intensity for d in draws]
    assert 160 <= sum(dropped) <= 240, sum(dropped)
    for draw in draws[:40]:
        out = augmented(points, draw)
        kept = augmented(points, dataclasses.replace(draw, drop_intensity=False))
        np.testing.assert_array_equal(out[:, :3], kept[:, :3])   # geometry as ever
        np.testing.assert_array_equal(out[:, 3], 0 if draw.drop_intensity else points[:, 3])
    # without it nothing more is drawn: the same transforms and jitter as the config had before
    plain = draw_augmentation(AugmentConfig(), np.random.default_rng(3))
    assert not plain.drop_intensity
    generator = np.random.default_rng(3)
    np.testing.assert_array_equal(plain.transform, random_transform(AugmentConfig(), generator))
    assert plain.jitter_seed == int(generator.integers(2 ** 63))
    with pytest.raises(Exception, match="intensity_dropout must be in"):
        AugmentConfig(intensity_dropout=1.5)


def test_jitter_is_clipped_normal_noise_repeatable_per_seed_and_thread_count(rng):
    import torch

    from zeroseg3d.geometry.augment import Augmentation, augmented

    points = _frame(rng, 50_000).points
    threads = torch.get_num_threads()

    def jittered(seed, num_threads):
        torch.set_num_threads(num_threads)
        seed = int(np.random.default_rng(seed).integers(2 ** 63))
        return augmented(points, Augmentation(np.eye(4), seed, 0.01, 0.02))

    try:
        one, two = jittered(7, 1), jittered(7, 2)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, jittered(8, threads))
    noise = (one[:, :3].astype(np.float64) - points[:, :3])
    np.testing.assert_array_equal(one[:, 3], points[:, 3])            # intensity untouched
    assert np.abs(noise).max() <= 0.02 + 1e-6
    # a normal of sigma 0.01 clipped at two sigmas: 4.55% of the draws at the bounds
    assert abs(noise.mean()) < 2e-4
    clipped = np.mean(np.abs(noise) > 0.02 - 1e-6)
    assert 0.040 < clipped < 0.051, clipped
    inside = noise[np.abs(noise) < 0.02 - 1e-6]
    assert abs(inside.std() - 0.00880) < 2e-4    # the std of a normal truncated at 2 sigma: 0.880 sigma


def test_a_batch_finished_on_its_device_equals_its_scans_built_one_by_one(rng):
    import torch

    from zeroseg3d.datasets.pipeline import finish_batch
    from zeroseg3d.geometry.voxelize import voxelize_batch

    # negative coordinates, points sharing voxels, a scan of one point, and a scan 2 km wide
    # whose keys need int64
    scans = [rng.normal(0, 20, (3000, 3)), rng.normal(0, 0.2, (1, 3)), rng.normal(-50, 2000, (2000, 3))]
    scans = [np.concatenate([s, s + 0.01]).astype(np.float32) for s in scans]
    offsets = np.cumsum([0] + [len(s) for s in scans])
    coords, point_to_voxel = voxelize_batch(torch.from_numpy(np.concatenate(scans)), torch.from_numpy(offsets), 0.1)
    start = 0
    for b, xyz in enumerate(scans):
        own = voxelize(xyz, 0.1)
        rows = slice(start, start + own.num_voxels)
        np.testing.assert_array_equal(coords[rows, 0].numpy(), b)
        np.testing.assert_array_equal(coords[rows, 1:].numpy(), own.coords)
        np.testing.assert_array_equal(point_to_voxel[offsets[b]:offsets[b + 1]].numpy(), own.point_to_voxel + start)
        start += own.num_voxels
    assert start == len(coords) and coords.dtype == torch.int32 and point_to_voxel.dtype == torch.int64
    # samples the training loader's workers leave to the step's device: the step's points and
    # voxels are those of the samples built whole (each with its own draw: rotation, scale,
    # flips, jitter; one scan left as read)
    frames = [_frame(rng, 400), _frame(rng, 900), _frame(rng, 300)]
    config = AugmentConfig(rotate_z_deg=180.0, scale_min=0.9, scale_max=1.1, jitter_sigma=0.01)

    def built(on_device):
        augment = [config, config, None]
        return collate([SampleBuilder(0.2, augment=a, on_device=on_device)(f, np.random.default_rng(i))
                        for i, (f, a) in enumerate(zip(frames, augment))])

    left = built(True)
    assert "voxel_coords" not in left and left["voxel_size"] == 0.2
    np.testing.assert_array_equal(left["points"].numpy(), np.concatenate([f.points for f in frames]))
    whole = built(False)
    finished = finish_batch(left)
    assert sorted(finished) == sorted(whole)
    for key in ("points", "voxel_coords", "point_to_voxel"):
        assert torch.equal(finished[key], whole[key]), key
    assert not torch.equal(finished["points"], left["points"])   # the collated batch stays as it was
    assert finish_batch(whole) is whole


def test_collate_offsets_points_voxels_and_pairs(rng):
    builder = SampleBuilder(0.2)
    samples = [builder(_frame(rng, 500)), builder(_frame(rng, 700))]
    batch = collate(samples)
    n0, v0 = len(samples[0].points), len(samples[0].voxel_coords)
    assert batch["offsets"].tolist() == [0, 500, 1200]
    assert batch["voxel_coords"].shape == (v0 + len(samples[1].voxel_coords), 4)
    assert batch["voxel_coords"][:v0, 0].eq(0).all() and batch["voxel_coords"][v0:, 0].eq(1).all()
    # the pairs of each sample, in order, their points offset into the batch's rows
    p0 = len(samples[0].pairing)
    assert len(batch["pair_point"]) == p0 + len(samples[1].pairing)
    np.testing.assert_array_equal(batch["pair_point"][:p0].numpy(), samples[0].pairing.point_idx)
    np.testing.assert_array_equal(batch["pair_point"][p0:].numpy() - n0, samples[1].pairing.point_idx)
    p2v = batch["point_to_voxel"].numpy()
    np.testing.assert_array_equal(batch["voxel_coords"].numpy()[p2v[n0:], 1:],
                                  samples[1].voxel_coords[samples[1].point_to_voxel])
    assert p2v[n0:].min() >= v0
