"""Pseudo labels consolidated over objects.

The 3D labels leave exactly the points of the unseen classes (and ignored ones) unlabelled, and
those fall apart into objects: a truck is one connected blob of unlabelled points, a traffic
sign a small plate whose pole is labelled. The teacher's per-pixel labels are noisy inside an
object (a truck's flat side taken for a sign, a sign for a truck) and missing where the camera
does not see it. Each connected component of unlabelled points (points closer than ``radius``
are connected) takes the class with the most teacher probability among its labelled points, and
every point of the component gets it, inside the camera's view or not, with confidence

    (the winning class's summed confidence) / (every class's summed confidence),

the winner's share of the votes: 1 for an object the teacher labels with one class throughout.
A component larger than ``max_extent`` (the diagonal of its bounding box) is not an object
(unlabelled ground joining things): its points keep their own labels.

Without 3D labels (annotation-free) every point is unlabelled and the ground joins everything
into one component. There the points within ``ground_height`` of the local ground (the lowest
point of the cells around them, ``ground_mask``) keep their own labels and the rest fall apart
into objects again: on the world's training frames this lifts the pseudo labels' mIoU from
15.3 to 23.2 at the same 95% accuracy (docs/results.md).
"""

from __future__ import annotations

import numpy as np


def cell_index(xyz: np.ndarray, size: float) -> np.ndarray:
    """(N,) index of each point's cell of edge ``size``, cells numbered in the lexicographic
    order of their (x, y, z) indices (np.unique(cells, axis=0)'s order, 5-10x faster)."""
    import torch

    x, y, z = _cells(xyz, size, 3)
    keys = (x * (y.max() + 1) + y) * (z.max() + 1) + z
    return torch.unique(torch.from_numpy(keys), return_inverse=True)[1].numpy()


def _cells(xyz: np.ndarray, size: float, dims: int) -> list[np.ndarray]:
    """The first ``dims`` cell indices of each point, each from 0: column by column, as
    numpy reduces an (N, 3) array's long axis several times slower."""
    cells = [np.floor(np.ascontiguousarray(xyz[:, k]) / size).astype(np.int64) for k in range(dims)]
    return [c - c.min() for c in cells]


def components(xyz: np.ndarray, radius: float) -> np.ndarray:
    """(N,) component index of each point: points closer than ``radius`` are connected.

    Points are first merged into cells of ``radius / 4`` (their centroids stand for them), so
    the neighbour search runs on a few thousand cells instead of every point of a dense near
    field; two points can be joined or split wrongly only within half a cell diagonal (0.22 r)
    of the radius."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if len(xyz) == 0:
        return np.zeros(0, np.int64)
    cell_of_point = cell_index(xyz, radius / 4)
    count = cell_of_point.max() + 1
    sizes = np.bincount(cell_of_point, minlength=count)
    centroid = np.stack([np.bincount(cell_of_point, xyz[:, k], count) for k in range(3)], 1) / sizes[:, None]
    pairs = cKDTree(centroid).query_pairs(radius, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1].astype(np.int64)[cell_of_point]


def ground_mask(xyz: np.ndarray, height: float, cell: float = 1.0, window: int = 5) -> np.ndarray:
    """(N,) True where a point is within ``height`` metres of the local ground: the lowest point
    of the ``window`` x ``window`` cells of ``cell`` metres around its own cell (5 m: wider than
    a car, so a roof is not taken for ground; a cell under a car has no points of its own)."""
    from scipy.ndimage import minimum_filter

    if len(xyz) == 0:
        return np.zeros(0, bool)
    import torch

    i, j = _cells(xyz, cell, 2)
    shape = (int(i.max()) + 1, int(j.max()) + 1)
    if shape[0] * shape[1] > 16_000_000:      # stray far points: 4x coarser cells, a window of >= 3 of them
        return ground_mask(xyz, height, cell * 4, max(3, window // 4 * 2 + 1))
    flat = i * shape[1] + j
    z = np.asarray(xyz[:, 2], np.float64)
    lowest = torch.full((shape[0] * shape[1],), np.inf, dtype=torch.float64).scatter_reduce_(
        0, torch.from_numpy(flat), torch.from_numpy(z), "amin").numpy()
    ground = minimum_filter(lowest.reshape(shape), size=window, mode="nearest").ravel()
    return z - ground[flat] < height


def component_extents(xyz: np.ndarray, component: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 3) lowest and highest coordinates of each component's points (float64)."""
    import torch

    points = torch.from_numpy(np.asarray(xyz, np.float64))
    index = torch.from_numpy(component)[:, None].expand(-1, 3)
    low = torch.full((count, 3), np.inf, dtype=torch.float64).scatter_reduce_(0, index, points, "amin")
    high = torch.full((count, 3), -np.inf, dtype=torch.float64).scatter_reduce_(0, index, points, "amax")
    return low.numpy(), high.numpy()


def consolidate_objects(xyz: np.ndarray, unlabelled: np.ndarray, label: np.ndarray, conf: np.ndarray,
                        num_classes: int, radius: float, max_extent: float = 15.0,
                        ground_height: float = 0.0, vote_weight: np.ndarray | None = None,
                        vote_agree: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N,) and confidences (N,) of the ``unlabelled`` points from the majority of the
    teacher's ``label``/``conf`` (-1: none) over each connected component of them; the other
    points get -1 and 0. A component without any teacher label stays unlabelled; one larger
    than ``max_extent`` metres keeps the teacher's labels point by point, and so do the points
    within ``ground_height`` (> 0) metres of the ground (``ground_mask``). ``vote_weight`` (N,)
    multiplies each point's confidence in its component's vote (the winner's share is then a
    share of the weighted votes). With ``vote_agree`` the weights can only take an object's
    label away, never give it another: the label is the winner of the unweighted votes, and its
    confidence the smaller of its shares of the unweighted and the weighted votes."""
    out_label = np.full(len(xyz), -1, np.int64)
    out_conf = np.zeros(len(xyz), np.float32)
    if ground_height > 0:
        ground = unlabelled & ground_mask(xyz, ground_height)
        out_label[ground] = label[ground]
        out_conf[ground] = np.where(label[ground] >= 0, conf[ground], 0.0)
        unlabelled = unlabelled & ~ground
    rows = np.flatnonzero(unlabelled)
    if len(rows) == 0:
        return out_label, out_conf
    component = components(xyz[rows], radius)
    count = component.max() + 1
    voted = label[rows] >= 0
    # bincount and scatter_reduce: the sums and extents of np.add.at / np.minimum.at, 10x faster
    cell = component[voted] * num_classes + label[rows][voted]
    votes = np.bincount(cell, conf[rows][voted], count * num_classes).reshape(count, num_classes)
    share = votes / np.maximum(votes.sum(1, keepdims=True), 1e-12)          # (objects, classes)
    if vote_weight is not None:
        weighted = np.bincount(cell, (conf[rows] * vote_weight[rows])[voted],
                               count * num_classes).reshape(count, num_classes)
        weighted /= np.maximum(weighted.sum(1, keepdims=True), 1e-12)
        share = np.minimum(share, weighted) if vote_agree else weighted
    winner = (votes if vote_agree else share).argmax(1)
    share = share[np.arange(count), winner]
    low, high = component_extents(xyz[rows], component, count)
    small = np.linalg.norm(high - low, axis=1)[component] <= max_extent
    vote = small & (share[component] > 0)   # an object without votes stays unlabelled
    out_label[rows[vote]] = winner[component[vote]]
    out_conf[rows[vote]] = share[component[vote]]
    own = ~small
    out_label[rows[own]] = label[rows[own]]
    out_conf[rows[own]] = np.where(label[rows[own]] >= 0, conf[rows[own]], 0.0)
    return out_label, out_conf
