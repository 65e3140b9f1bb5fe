"""Vectorised ray casting against boxes, vertical cylinders, ellipsoids and the ground plane.

A scene is a set of primitive tables (numpy structured arrays). Rays sharing an origin are
bucketed by azimuth and each bucket is tested only against the primitives whose bounding
circle it can see, so the cost grows with rays x nearby primitives, not rays x scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-4
# Fields shared by every primitive type: what a hit reports.
COMMON = [("label", "u2"), ("instance", "u4"), ("color", "f4", 3), ("texture", "u1"),
          ("reflectivity", "f4")]
BOX = np.dtype([("center", "f8", 3), ("half", "f8", 3), ("yaw", "f8")] + COMMON)
CYLINDER = np.dtype([("center", "f8", 2), ("z0", "f8"), ("z1", "f8"), ("radius", "f8")] + COMMON)
ELLIPSOID = np.dtype([("center", "f8", 3), ("radii", "f8", 3)] + COMMON)


@dataclass
class Hits:
    """Per ray: distance t (inf for a miss), unit normal, primitive kind (0 none, 1 ground,
    2 box, 3 cylinder, 4 ellipsoid), index into that kind's table, and the hit point in the
    hit primitive's local frame (boxes: unrotated, centred; others: world)."""

    t: np.ndarray
    normal: np.ndarray
    kind: np.ndarray
    index: np.ndarray
    local: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "Hits":
        return cls(np.full(n, np.inf), np.zeros((n, 3)), np.zeros(n, np.int8),
                   np.full(n, -1, np.int64), np.zeros((n, 3)))

    def update(self, rows: np.ndarray, t: np.ndarray, normal: np.ndarray, kind: int,
               index: np.ndarray, local: np.ndarray) -> None:
        """Keep the nearer of the stored hit and this one, for ``rows`` of the ray set."""
        closer = t < self.t[rows]
        rows = rows[closer]
        self.t[rows] = t[closer]
        self.normal[rows] = normal[closer]
        self.kind[rows] = kind
        self.index[rows] = index[closer]
        self.local[rows] = local[closer]


def _box_hits(o, d, boxes):
    """(R,) rays x (P,) boxes -> nearest t, normal, box index, local hit point per ray."""
    c, s = np.cos(boxes["yaw"]), np.sin(boxes["yaw"])
    rel = o[None, :] - boxes["center"]                       # (P, 3)
    # rotate into box frames by -yaw
    ox = c * rel[:, 0] + s * rel[:, 1]
    oy = -s * rel[:, 0] + c * rel[:, 1]
    oz = rel[:, 2]
    dx = d[:, None, 0] * c + d[:, None, 1] * s              # (R, P)
    dy = -d[:, None, 0] * s + d[:, None, 1] * c
    dz = d[:, None, 2]                                       # (R, 1): boxes turn about z only
    local_o = (ox, oy, oz)
    local_d = (dx, dy, dz)
    tmin = tmax = axis_of_min = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis in range(3):
            inv = 1.0 / local_d[axis]
            h = boxes["half"][:, axis]
            t1 = (-h - local_o[axis]) * inv
            t2 = (h - local_o[axis]) * inv
            near = np.minimum(t1, t2)
            far = np.maximum(t1, t2)
            if not np.isfinite(inv).all():   # rare: a ray parallel to a face pair
                parallel = np.broadcast_to(~np.isfinite(inv), near.shape)
                outside = parallel & (np.abs(local_o[axis]) > h)
                near = np.where(parallel, np.where(outside, np.inf, -np.inf), near)
                far = np.where(parallel, np.where(outside, -np.inf, np.inf), far)
            if tmin is None:
                tmin, tmax, axis_of_min = near, far, np.zeros(near.shape, np.int8)
                continue
            axis_of_min[near > tmin] = axis
            np.maximum(tmin, near, out=tmin)
            np.minimum(tmax, far, out=tmax)
    t = np.where((tmax >= tmin) & (tmin > EPS), tmin, np.inf)
    best = t.argmin(axis=1)
    rows = np.arange(len(d))
    t_best = t[rows, best]
    axis = axis_of_min[rows, best]
    ld = np.stack([dx[rows, best], dy[rows, best], d[:, 2]], axis=1)
    lo = np.stack([local_o[k][best] for k in range(3)], axis=1)
    local = lo + ld * np.where(np.isfinite(t_best), t_best, 0.0)[:, None]
    normal_local = np.zeros((len(d), 3))
    normal_local[rows, axis] = -np.sign(ld[rows, axis])
    cb, sb = c[best], s[best]
    normal = np.stack([cb * normal_local[:, 0] - sb * normal_local[:, 1],
                       sb * normal_local[:, 0] + cb * normal_local[:, 1], normal_local[:, 2]], 1)
    return t_best, normal, best, local


def _cylinder_hits(o, d, cyl):
    rel = o[None, :2] - cyl["center"]                        # (P, 2)
    dx, dy = d[:, None, 0], d[:, None, 1]
    a = dx * dx + dy * dy                                    # (R, 1)
    b = 2 * (dx * rel[:, 0] + dy * rel[:, 1])                # (R, P)
    cc = (rel ** 2).sum(1) - cyl["radius"] ** 2              # (P,)
    disc = b * b - 4 * a * cc
    with np.errstate(invalid="ignore", divide="ignore"):
        t_side = (-b - np.sqrt(disc)) / (2 * a)
        z = o[2] + t_side * d[:, None, 2]
        side_ok = (disc >= 0) & (t_side > EPS) & (z >= cyl["z0"]) & (z <= cyl["z1"])
        t_side = np.where(side_ok, t_side, np.inf)
        t_cap = (cyl["z1"] - o[2]) / d[:, None, 2]
        px = rel[:, 0] + t_cap * dx
        py = rel[:, 1] + t_cap * dy
        cap_ok = (t_cap > EPS) & (px * px + py * py <= cyl["radius"] ** 2) & (d[:, None, 2] < 0)
        t_cap = np.where(cap_ok, t_cap, np.inf)
    t = np.minimum(t_side, t_cap)
    best = t.argmin(axis=1)
    rows = np.arange(len(d))
    t_best = t[rows, best]
    finite_t = np.where(np.isfinite(t_best), t_best, 0.0)
    point = o[None, :] + d * finite_t[:, None]
    on_cap = t_cap[rows, best] <= t_side[rows, best]
    radial = point[:, :2] - cyl["center"][best]
    radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    normal = np.where(on_cap[:, None], [0.0, 0.0, 1.0],
                      np.concatenate([radial, np.zeros((len(d), 1))], axis=1))
    return t_best, normal, best, point


def _ellipsoid_hits(o, d, ell):
    r = ell["radii"]                                          # (P, 3)
    oc = (o[None, :] - ell["center"]) / r                     # (P, 3)
    dd = d[:, None, :] / r[None]                              # (R, P, 3)
    a = (dd * dd).sum(-1)
    b = 2 * (dd * oc[None]).sum(-1)
    c = (oc * oc).sum(-1) - 1.0
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    t = np.where((disc >= 0) & (t > EPS), t, np.inf)
    best = t.argmin(axis=1)
    rows = np.arange(len(d))
    t_best = t[rows, best]
    point = o[None, :] + d * np.where(np.isfinite(t_best), t_best, 0.0)[:, None]
    normal = (point - ell["center"][best]) / ell["radii"][best] ** 2
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    return t_best, normal, best, point


def _bounding_circles(scene):
    """(center_xy, radius) of each primitive of each kind, for azimuth culling."""
    out = {}
    boxes = scene.boxes
    out["box"] = (boxes["center"][:, :2], np.hypot(boxes["half"][:, 0], boxes["half"][:, 1]))
    out["cylinder"] = (scene.cylinders["center"], scene.cylinders["radius"])
    out["ellipsoid"] = (scene.ellipsoids["center"][:, :2], scene.ellipsoids["radii"][:, :2].max(1))
    return out


KINDS = (("box", 2, _box_hits), ("cylinder", 3, _cylinder_hits), ("ellipsoid", 4, _ellipsoid_hits))


def cast_rays(scene, origin: np.ndarray, directions: np.ndarray, max_range: float = 120.0,
              bins: int = 180) -> Hits:
    """Nearest hit of unit ``directions`` (R, 3) from one ``origin`` (3,) in ``scene``."""
    origin = np.asarray(origin, dtype=np.float64)
    directions = np.asarray(directions, dtype=np.float64)
    hits = Hits.empty(len(directions))
    # ground plane z = 0
    with np.errstate(divide="ignore"):
        t_ground = np.where(directions[:, 2] < -1e-9, -origin[2] / directions[:, 2], np.inf)
    rows = np.flatnonzero(np.isfinite(t_ground))
    points = origin + directions[rows] * t_ground[rows, None]
    hits.update(rows, t_ground[rows], np.tile([0.0, 0.0, 1.0], (len(rows), 1)), 1,
                np.zeros(len(rows), np.int64), points)

    azimuth = np.arctan2(directions[:, 1], directions[:, 0])
    ray_bin = np.minimum(((azimuth + np.pi) / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    order = np.argsort(ray_bin, kind="stable")
    bounds = np.searchsorted(ray_bin[order], np.arange(bins + 1))
    bin_width = 2 * np.pi / bins
    for name, kind, intersect in KINDS:
        table = getattr(scene, name + ("es" if name == "box" else "s"))
        if len(table) == 0:
            continue
        centers, radius = _bounding_circles(scene)[name]
        rel = centers - origin[:2]
        dist = np.hypot(rel[:, 0], rel[:, 1])
        near = dist - radius < max_range
        center_az = np.arctan2(rel[:, 1], rel[:, 0])
        with np.errstate(invalid="ignore"):
            half_span = np.where(dist > radius, np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0, 1)), np.pi)
        for b in range(bins):
            lo, hi = bounds[b], bounds[b + 1]
            if lo == hi:
                continue
            bin_center = -np.pi + (b + 0.5) * bin_width
            gap = np.abs((center_az - bin_center + np.pi) % (2 * np.pi) - np.pi)
            candidates = np.flatnonzero(near & (gap <= half_span + bin_width / 2))
            if len(candidates) == 0:
                continue
            ray_rows = order[lo:hi]
            t, normal, best, local = intersect(origin, directions[ray_rows], table[candidates])
            hits.update(ray_rows, t, normal, kind, candidates[best], local)
    hits.t[hits.t > max_range] = np.inf
    missed = ~np.isfinite(hits.t)
    hits.kind[missed] = 0
    hits.index[missed] = -1
    return hits
