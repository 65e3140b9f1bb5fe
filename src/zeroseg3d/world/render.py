"""Sensors of the synthetic world: a 64-beam rotating LiDAR and a pinhole RGB camera.

Both cast rays into the same scene, so a LiDAR point and the pixel it projects to see the
same surface. Sensor frames: LiDAR x forward, y left, z up; camera x right, y down, z forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zeroseg3d.world.raycast import Hits, cast_rays
from zeroseg3d.world.scene import RAW, REFLECTIVITY, Scene, Tex

LIDAR_HEIGHT = 1.73
# HDL-64E-like beams: 32 upper beams +2.0 .. -8.33 deg, 32 lower beams -8.83 .. -24.33 deg.
BEAM_ELEVATIONS = np.deg2rad(np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.33, 32)]))
AZIMUTH_STEPS = 2000
MAX_RANGE = 120.0

# Camera 2 mounted like KITTI's: 0.27 m ahead of the LiDAR, 0.08 m lower, 0.06 m to the left.
# The image is 640x192 (KITTI's aspect ratio at about half its resolution: fast to render and to
# run the teacher on, while 15 cm poles at 20 m still cover about 3 pixels).
IMAGE_SIZE = (640, 192)
FOCAL = 370.0
K_CAMERA = np.array([[FOCAL, 0.0, 319.5], [0.0, FOCAL, 95.5], [0.0, 0.0, 1.0]])
CAM0_IN_LIDAR = np.array([0.27, 0.0, -0.08])
CAM2_FROM_CAM0 = np.array([0.06, 0.0, 0.0])   # P2[:, 3] = K @ CAM2_FROM_CAM0
R_CAM_FROM_LIDAR = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def tr_cam0_from_lidar() -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = R_CAM_FROM_LIDAR
    transform[:3, 3] = -R_CAM_FROM_LIDAR @ CAM0_IN_LIDAR
    return transform


def p2_matrix() -> np.ndarray:
    return np.concatenate([K_CAMERA, (K_CAMERA @ CAM2_FROM_CAM0)[:, None]], axis=1)


def t_cam2_from_lidar() -> np.ndarray:
    offset = np.eye(4)
    offset[:3, 3] = CAM2_FROM_CAM0
    return offset @ tr_cam0_from_lidar()


@dataclass
class Surface:
    """What the rays hit: raw label, instance, base colour, texture, reflectivity, ids."""

    label: np.ndarray
    instance: np.ndarray
    color: np.ndarray
    texture: np.ndarray
    reflectivity: np.ndarray
    primitive: np.ndarray   # kind * 1e6 + index: which primitive (ground: kind 1)


def surfaces(scene: Scene, hits: Hits) -> Surface:
    n = len(hits.t)
    label = np.zeros(n, np.uint16)
    instance = np.zeros(n, np.uint32)
    color = np.zeros((n, 3))
    texture = np.zeros(n, np.uint8)
    reflectivity = np.zeros(n)
    ground = hits.kind == 1
    g_label = scene.layout.label(hits.local[ground, 0], hits.local[ground, 1])
    label[ground] = g_label
    ground_tex = {RAW["road"]: (Tex.ASPHALT, (70, 70, 74)), RAW["lane-marking"]: (Tex.PAINT, (225, 225, 215)),
                  RAW["parking"]: (Tex.PARKING, (95, 93, 92)), RAW["sidewalk"]: (Tex.TILES, (170, 168, 160)),
                  RAW["terrain"]: (Tex.GRASS, (105, 130, 60))}
    names = {v: k for k, v in RAW.items()}
    for raw, (tex, rgb) in ground_tex.items():
        rows = np.flatnonzero(ground)[g_label == raw]
        texture[rows], color[rows] = tex, rgb
        reflectivity[rows] = REFLECTIVITY[names[raw]]
    for kind, table in ((2, scene.boxes), (3, scene.cylinders), (4, scene.ellipsoids)):
        rows = np.flatnonzero(hits.kind == kind)
        if len(rows) == 0:
            continue
        rec = table[hits.index[rows]]
        label[rows], instance[rows] = rec["label"], rec["instance"]
        color[rows], texture[rows] = rec["color"], rec["texture"]
        reflectivity[rows] = rec["reflectivity"]
    primitive = hits.kind.astype(np.int64) * 1_000_000 + np.maximum(hits.index, 0)
    primitive[hits.kind == 0] = -1
    return Surface(label, instance, color, texture, reflectivity, primitive)


def lidar_directions() -> np.ndarray:
    """(64 * 2000, 3) unit beam directions in the LiDAR frame, beam-major."""
    azimuth = np.linspace(np.pi, -np.pi, AZIMUTH_STEPS, endpoint=False)
    elev, az = np.meshgrid(BEAM_ELEVATIONS, azimuth, indexing="ij")
    return np.stack([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)], -1).reshape(-1, 3)


def scan_lidar(scene: Scene, pose: np.ndarray, rng: np.random.Generator):
    """A LiDAR sweep from ``pose`` (4x4 LiDAR -> world).

    Returns points (N, 4) float32 in the LiDAR frame (x, y, z, remission), raw labels (N,)
    uint16, instances (N,) uint32, and primitive ids (N,) int64 (for checking labels).
    """
    local_dirs = lidar_directions()
    dirs = local_dirs @ pose[:3, :3].T
    hits = cast_rays(scene, pose[:3, 3], dirs, MAX_RANGE)
    surf = surfaces(scene, hits)
    hit = np.isfinite(hits.t)
    # dropout: random, more at long range and at grazing incidence
    incidence = np.abs((hits.normal * dirs).sum(1))
    keep_prob = 0.97 - 0.25 * np.clip(hits.t / MAX_RANGE, 0, 1) - 0.3 * (incidence < 0.08)
    keep = hit & (rng.random(len(hits.t)) < keep_prob)
    rng_t = hits.t[keep] + rng.normal(0, 0.02, keep.sum())
    xyz = local_dirs[keep] * rng_t[:, None]
    remission = np.clip(surf.reflectivity[keep] * (0.4 + 0.6 * incidence[keep])
                        + rng.normal(0, 0.03, keep.sum()), 0.0, 1.0)
    points = np.concatenate([xyz, remission[:, None]], axis=1).astype(np.float32)
    return points, surf.label[keep], surf.instance[keep], surf.primitive[keep]


# -- camera -------------------------------------------------------------------------------
def value_noise(p: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Smooth 3D value noise in [0, 1) at points (N, 3), features of size ``scale`` metres: the
    smoothstep blend of pseudo-random values hashed from the integer lattice cells around each
    point."""
    q = p / scale
    base = np.floor(q)
    f = q - base
    f = f * f * (3 - 2 * f)
    cell = base.astype(np.int64)
    # the hash (x * 73856093) ^ (y * 19349663) ^ (z * 83492791) ^ (seed * 2654435761): each axis's
    # term for its two corners once, combined by xor at each of the 8 corners
    hx, hy, hz = ([(cell[:, k] + d) * prime for d in (0, 1)]
                  for k, prime in enumerate((73856093, 19349663, 83492791)))
    hz = [h ^ (seed * 2654435761) for h in hz]
    wx, wy, wz = ([1 - f[:, k], f[:, k]] for k in range(3))
    out = np.zeros(len(p))
    for dx in (0, 1):
        for dy in (0, 1):
            hxy = hx[dx] ^ hy[dy]
            wxy = wx[dx] * wy[dy]
            for dz in (0, 1):
                h = hxy ^ hz[dz]
                h = (h ^ (h >> 13)) * 1274126177
                out += (wxy * wz[dz]) * (((h ^ (h >> 16)) & 0xFFFF) / 65536.0)
    return out


def shade(scene: Scene, hits: Hits, surf: Surface, dirs: np.ndarray, origin: np.ndarray,
          rng: np.random.Generator, sun: np.ndarray) -> np.ndarray:
    """(R, 3) float RGB of the hit surfaces: texture x Lambert shading, fog; sky for misses."""
    n = len(hits.t)
    hit = np.isfinite(hits.t)
    world = origin + dirs * np.where(hit, hits.t, 0.0)[:, None]
    rgb = surf.color.copy()
    tex = surf.texture
    loc = hits.local

    def apply(mask, factor):
        rgb[mask] *= factor[:, None] if factor.ndim == 1 else factor

    # textures are drawn on hits only (a miss is PLAIN): no noise for the sky's pixels
    grain, coarse = np.zeros(n), np.zeros(n)
    grain[hit] = value_noise(world[hit], 0.08, 1)
    coarse[hit] = value_noise(world[hit], 0.9, 2)
    m = tex == Tex.ASPHALT
    apply(m, 0.8 + 0.35 * grain[m] + 0.15 * coarse[m])
    m = tex == Tex.PAINT
    apply(m, 0.9 + 0.15 * grain[m])
    m = tex == Tex.PARKING  # white bay lines every 5.5 m
    lines = (np.mod(world[m, 0], 5.5) < 0.12)
    rgb[m] = np.where(lines[:, None], [215.0, 215, 205], rgb[m] * (0.8 + 0.3 * grain[m])[:, None])
    m = tex == Tex.TILES
    joints = (np.mod(world[m, 0], 0.5) < 0.04) | (np.mod(world[m, 1], 0.5) < 0.04)
    apply(m, np.where(joints, 0.7, 0.9 + 0.2 * grain[m]) * (0.9 + 0.2 * coarse[m]))
    m = tex == Tex.GRASS
    blotch = value_noise(world[m], 0.35, 3)
    rgb[m] = rgb[m] * (0.7 + 0.5 * grain[m])[:, None] + np.outer(blotch - 0.5, [40.0, 20, -10])
    m = tex == Tex.FOLIAGE
    leaves = value_noise(world[m], 0.18, 4)
    apply(m, 0.55 + 0.75 * leaves * (0.7 + 0.3 * grain[m]))
    m = tex == Tex.BARK
    apply(m, 0.7 + 0.4 * value_noise(world[m] * [1, 1, 0.15], 0.05, 5))
    m = tex == Tex.FACADE  # window grid on the facades, door-height ground floor
    u = np.where(np.abs(hits.normal[m, 0]) > 0.5, world[m, 1], world[m, 0])
    z = world[m, 2]
    window = (np.mod(u, 3.0) > 0.9) & (np.mod(u, 3.0) < 2.1) & (np.mod(z, 3.2) > 1.0) & (np.mod(z, 3.2) < 2.5) & (z > 2.5)
    roof = hits.normal[m, 2] > 0.5
    glass = np.array([70.0, 85, 105]) * (0.8 + 0.4 * coarse[m])[:, None]
    rgb[m] = np.where(window[:, None] & ~roof[:, None], glass, rgb[m] * (0.85 + 0.25 * grain[m])[:, None])
    m = tex == Tex.SLATS
    slats = np.mod(world[m, 0], 0.2) < 0.05
    apply(m, np.where(slats, 0.6, 1.0) * (0.9 + 0.2 * grain[m]))
    m = tex == Tex.METAL
    apply(m, 0.85 + 0.3 * grain[m])
    m = tex == Tex.SIGN  # a bright border around a differently coloured face with a bar
    face_u, face_v = np.abs(loc[m, 1]), loc[m, 2]
    half = scene.boxes["half"][hits.index[m]]
    border = (face_u > 0.75 * half[:, 1]) | (np.abs(face_v) > 0.75 * half[:, 2])
    bar = np.abs(face_v) < 0.15 * half[:, 2]
    inner = np.where(bar[:, None], [245.0, 245, 245], rgb[m])
    rgb[m] = np.where(border[:, None], [240.0, 240, 240], inner)
    back = np.abs(hits.normal[m, 0]) < 0.5  # sides of the plate are grey metal
    rgb[np.flatnonzero(m)[back]] = [130.0, 130, 135]
    m = tex == Tex.CARPAINT
    apply(m, 0.9 + 0.15 * grain[m])
    m = tex == Tex.GLASS
    apply(m, 0.7 + 0.6 * coarse[m])
    m = tex == Tex.RUBBER
    apply(m, 0.8 + 0.3 * grain[m])
    m = tex == Tex.CLOTH
    apply(m, 0.8 + 0.35 * value_noise(world[m], 0.05, 6))
    m = tex == Tex.CARGO  # vertical panel ribs
    u = np.abs(loc[m, 0]) + np.abs(loc[m, 1])
    apply(m, np.where(np.mod(u, 0.6) < 0.06, 0.7, 0.95 + 0.1 * grain[m]))

    light = 0.45 + 0.65 * np.clip((hits.normal * sun).sum(1), 0, 1)
    rgb *= light[:, None]
    sky_top, sky_horizon = np.array([95.0, 140, 205]), np.array([200.0, 215, 230])
    up = np.clip(dirs[:, 2] * 3, 0, 1)[:, None]
    sky = sky_horizon * (1 - up) + sky_top * up
    clouds = np.zeros((n, 1))   # the sky shows where nothing is hit
    clouds[~hit, 0] = value_noise(dirs[~hit] * 40, 1.0, 7)
    sky = sky * (1 - 0.35 * clouds) + 240 * 0.35 * clouds
    fog = np.exp(-np.where(hit, hits.t, 0.0) / 350.0)[:, None]
    rgb = np.where(hit[:, None], rgb * fog + sky_horizon * (1 - fog), sky)
    rgb += rng.normal(0, 5.0, (n, 3))
    return np.clip(rgb, 0, 255)


def render_camera(scene: Scene, cam_to_world: np.ndarray, rng: np.random.Generator,
                  sun: np.ndarray | None = None):
    """RGB (H, W, 3) uint8, per-pixel raw labels (H, W) uint16 (0 = sky) and instance ids
    (H, W) uint16 (0 = none)."""
    width, height = IMAGE_SIZE
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    pixels = np.stack([cols.ravel(), rows.ravel(), np.ones(cols.size)], axis=1)
    cam_dirs = pixels @ np.linalg.inv(K_CAMERA).T
    cam_dirs /= np.linalg.norm(cam_dirs, axis=1, keepdims=True)
    dirs = cam_dirs @ cam_to_world[:3, :3].T
    origin = cam_to_world[:3, 3]
    hits = cast_rays(scene, origin, dirs, 250.0)
    surf = surfaces(scene, hits)
    sun = np.array([0.4, -0.3, 0.85]) if sun is None else sun
    rgb = shade(scene, hits, surf, dirs, origin, rng, sun / np.linalg.norm(sun))
    image = rgb.reshape(height, width, 3).astype(np.uint8)
    return image, surf.label.reshape(height, width), surf.instance.reshape(height, width).astype(np.uint16)
