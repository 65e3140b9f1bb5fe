"""Procedural street scenes built from boxes, vertical cylinders and ellipsoids.

The road runs along +x, centred on y = 0. Every scene is drawn from a seed: road width and
lanes, parking strips, raised sidewalks, terrain strips, fences, buildings, trees, bushes,
poles, traffic signs (a plate on a pole) and road users. Labels are SemanticKITTI raw ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zeroseg3d.world.raycast import BOX, CYLINDER, ELLIPSOID

RAW = {"car": 10, "bicycle": 11, "motorcycle": 15, "truck": 18, "person": 30, "bicyclist": 31,
       "road": 40, "parking": 44, "sidewalk": 48, "building": 50, "fence": 51,
       "lane-marking": 60, "vegetation": 70, "trunk": 71, "terrain": 72, "pole": 80,
       "traffic-sign": 81}
# The SemanticKITTI classes the world renders (lane markings are road there): configs/world.yaml
# lists the same, and the demo teacher learns these and the sky
WORLD_CLASSES = ["car", "bicycle", "motorcycle", "truck", "person", "bicyclist", "road", "parking",
                 "sidewalk", "building", "fence", "vegetation", "trunk", "terrain", "pole",
                 "traffic-sign"]
STUFF = {"road", "parking", "sidewalk", "building", "fence", "lane-marking", "vegetation",
         "terrain", "pole", "trunk", "traffic-sign"}


class Tex:
    """Texture ids: how the camera paints a surface (see render.py)."""

    PLAIN, ASPHALT, PAINT, PARKING, TILES, GRASS, FACADE, SLATS, FOLIAGE, BARK, METAL, \
        SIGN, CARPAINT, GLASS, RUBBER, CLOTH, SKIN, CARGO = range(18)


# Reflectivity (LiDAR remission) per class, before incidence and noise.
REFLECTIVITY = {"road": 0.25, "lane-marking": 0.7, "parking": 0.3, "sidewalk": 0.35,
                "terrain": 0.45, "building": 0.3, "fence": 0.4, "vegetation": 0.5, "trunk": 0.3,
                "pole": 0.45, "traffic-sign": 0.95, "car": 0.35, "truck": 0.4, "bicycle": 0.3,
                "motorcycle": 0.35, "person": 0.25, "bicyclist": 0.3}

PALETTES = {
    "car": [(170, 20, 25), (25, 50, 150), (225, 225, 220), (25, 25, 28), (150, 152, 158),
            (30, 95, 50), (200, 160, 40), (110, 40, 120), (80, 80, 90)],
    "truck_cab": [(220, 220, 215), (200, 40, 30), (30, 70, 160), (230, 180, 30), (40, 110, 60)],
    "cargo": [(235, 235, 230), (190, 190, 185), (200, 150, 40), (160, 40, 30), (60, 90, 150),
              (120, 120, 110)],
    "motorcycle": [(200, 25, 25), (240, 140, 20), (235, 205, 30), (30, 60, 170), (40, 140, 70), (225, 225, 228),
                   (190, 190, 198)],
    "bicycle": [(30, 90, 200), (220, 30, 40), (40, 40, 40), (240, 200, 20), (30, 160, 90)],
    "cloth": [(40, 60, 120), (150, 30, 40), (220, 210, 190), (30, 30, 30), (60, 120, 70),
              (200, 120, 40), (120, 80, 140), (90, 90, 95)],
    "pants": [(30, 35, 60), (40, 40, 40), (90, 80, 70), (60, 70, 100)],
    "skin": [(230, 190, 160), (200, 150, 110), (140, 95, 65), (90, 60, 40)],
    "facade": [(215, 200, 170), (170, 80, 60), (150, 150, 150), (230, 230, 225), (200, 160, 160),
               (140, 120, 100), (190, 180, 120)],
    "fence": [(120, 120, 125), (130, 90, 55), (70, 90, 70)],
    "sign": [(200, 20, 30), (20, 60, 170), (240, 200, 20), (240, 240, 240)],
}


@dataclass
class GroundLayout:
    """Flat ground regions across the road (by y), constant along x."""

    road_half: float
    lanes: list[float]                 # y of dashed lane markings
    parking: list[tuple[float, float]]  # (y0, y1) strips
    sidewalk: list[tuple[float, float]]
    terrain: list[tuple[float, float]]  # beyond sidewalks; everything else outside is terrain

    def label(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Raw label of ground points (lane markings are raw 60, which maps to road)."""
        out = np.full(x.shape, RAW["terrain"], np.uint16)
        road = np.abs(y) <= self.road_half
        out[road] = RAW["road"]
        for lane in self.lanes:
            dashed = (np.abs(y - lane) < 0.08) & (np.mod(x, 9.0) < 4.0)
            out[road & dashed] = RAW["lane-marking"]
        for y0, y1 in self.parking:
            out[(y >= y0) & (y <= y1)] = RAW["parking"]
        for y0, y1 in self.sidewalk:
            out[(y >= y0) & (y <= y1)] = RAW["sidewalk"]
        return out


@dataclass
class Scene:
    layout: GroundLayout
    boxes: np.ndarray = field(default_factory=lambda: np.zeros(0, BOX))
    cylinders: np.ndarray = field(default_factory=lambda: np.zeros(0, CYLINDER))
    ellipsoids: np.ndarray = field(default_factory=lambda: np.zeros(0, ELLIPSOID))
    ego_y: float = 0.0


class SceneBuilder:
    """Collects primitives; each object gets an instance id (stuff classes get 0)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.boxes: list[tuple] = []
        self.cylinders: list[tuple] = []
        self.ellipsoids: list[tuple] = []
        self.footprints: list[tuple[float, float, float]] = []  # x, y, radius
        self.next_instance = 1

    def instance(self, cls: str) -> int:
        if cls in STUFF:
            return 0
        self.next_instance += 1
        return self.next_instance - 1

    def _common(self, cls, instance, color, texture):
        jitter = self.rng.normal(0, 6, 3)
        color = np.clip(np.asarray(color, float) + jitter, 0, 255)
        return (RAW[cls], instance, color, texture, REFLECTIVITY[cls])

    def box(self, cls, instance, center, half, yaw, color, texture):
        self.boxes.append((center, half, yaw) + self._common(cls, instance, color, texture))

    def cylinder(self, cls, instance, center_xy, z0, z1, radius, color, texture):
        self.cylinders.append((center_xy, z0, z1, radius) + self._common(cls, instance, color, texture))

    def ellipsoid(self, cls, instance, center, radii, color, texture):
        self.ellipsoids.append((center, radii) + self._common(cls, instance, color, texture))

    def local_box(self, cls, instance, pose, offset, half, color, texture, yaw_offset=0.0):
        """A box at ``offset`` (object frame, z up from the ground) of an object at pose (x, y, yaw)."""
        x, y, yaw = pose
        c, s = np.cos(yaw), np.sin(yaw)
        center = (x + c * offset[0] - s * offset[1], y + s * offset[0] + c * offset[1], offset[2])
        self.box(cls, instance, center, half, yaw + yaw_offset, color, texture)

    def free(self, x, y, radius) -> bool:
        return all((x - fx) ** 2 + (y - fy) ** 2 > (radius + fr) ** 2 for fx, fy, fr in self.footprints)

    def claim(self, x, y, radius) -> None:
        self.footprints.append((x, y, radius))

    def pick(self, palette):
        options = PALETTES[palette]
        return options[self.rng.integers(len(options))]

    def build(self, layout: GroundLayout, ego_y: float) -> Scene:
        return Scene(layout, np.array(self.boxes, BOX), np.array(self.cylinders, CYLINDER),
                     np.array(self.ellipsoids, ELLIPSOID), ego_y)


# -- objects ------------------------------------------------------------------------------
def add_car(b: SceneBuilder, pose):
    rng, inst = b.rng, b.instance("car")
    length, width = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.95)
    height = rng.uniform(1.35, 1.6)
    paint = b.pick("car")
    body_h = height * 0.5
    b.local_box("car", inst, pose, (0, 0, 0.3 + body_h / 2), (length / 2, width / 2, body_h / 2), paint, Tex.CARPAINT)
    cabin_l = length * rng.uniform(0.45, 0.6)
    b.local_box("car", inst, pose, (-length * 0.05, 0, 0.3 + body_h + (height - 0.3 - body_h) / 2),
                (cabin_l / 2, width / 2 * 0.92, (height - 0.3 - body_h) / 2), (60, 70, 85), Tex.GLASS)
    for fx in (-0.32, 0.32):
        for side in (-1, 1):
            b.local_box("car", inst, pose, (fx * length, side * (width / 2 - 0.1), 0.33),
                        (0.33, 0.1, 0.33), (25, 25, 25), Tex.RUBBER)


def add_truck(b: SceneBuilder, pose):
    rng, inst = b.rng, b.instance("truck")
    cab_l, width = rng.uniform(1.8, 2.4), rng.uniform(2.3, 2.55)
    cargo_l, cargo_h = rng.uniform(4.5, 8.5), rng.uniform(2.6, 3.4)
    cab_h = rng.uniform(2.4, 2.9)
    total = cab_l + cargo_l + 0.3
    front = total / 2
    cab_color = b.pick("truck_cab")
    b.local_box("truck", inst, pose, (front - cab_l / 2, 0, 0.55 + (cab_h - 0.55) / 2),
                (cab_l / 2, width / 2, (cab_h - 0.55) / 2), cab_color, Tex.CARPAINT)
    b.local_box("truck", inst, pose, (front - 0.06, 0, cab_h * 0.72), (0.08, width / 2 * 0.85, cab_h * 0.14),
                (50, 60, 75), Tex.GLASS)
    b.local_box("truck", inst, pose, (front - cab_l - 0.3 - cargo_l / 2, 0, 0.9 + cargo_h / 2),
                (cargo_l / 2, width / 2 * 1.02, cargo_h / 2), b.pick("cargo"), Tex.CARGO)
    b.local_box("truck", inst, pose, (front - total / 2, 0, 0.7), (total / 2 * 0.95, width / 2 * 0.7, 0.2),
                (40, 40, 40), Tex.METAL)
    for fx in (front - cab_l * 0.5, front - cab_l - cargo_l * 0.6, front - cab_l - cargo_l * 0.85):
        for side in (-1, 1):
            b.local_box("truck", inst, pose, (fx, side * (width / 2 - 0.2), 0.5), (0.5, 0.18, 0.5),
                        (22, 22, 22), Tex.RUBBER)


def _two_wheeler(b, cls, inst, pose, wheel_r, length, frame_color, heavy):
    for fx in (-length / 2 + wheel_r, length / 2 - wheel_r):
        b.local_box(cls, inst, pose, (fx, 0, wheel_r), (wheel_r, 0.04 if not heavy else 0.09, wheel_r),
                    (20, 20, 20), Tex.RUBBER)
    if heavy:  # motorcycle: wide engine, painted tank, tail and front fairing, windscreen, exhaust
        front = length / 2 - wheel_r
        b.local_box(cls, inst, pose, (0, 0, wheel_r + 0.12), (length * 0.26, 0.24, 0.2), (70, 70, 75), Tex.METAL)
        b.local_box(cls, inst, pose, (0.12, 0, wheel_r + 0.43), (length * 0.2, 0.21, 0.13), frame_color, Tex.CARPAINT)
        b.local_box(cls, inst, pose, (-0.45, 0, wheel_r + 0.4), (0.3, 0.16, 0.07), (25, 25, 25), Tex.PLAIN)
        b.local_box(cls, inst, pose, (-length / 2 + 0.25, 0, wheel_r + 0.45), (0.2, 0.14, 0.1), frame_color,
                    Tex.CARPAINT)
        b.local_box(cls, inst, pose, (front - 0.05, 0, wheel_r + 0.55), (0.14, 0.27, 0.2), frame_color, Tex.CARPAINT)
        b.local_box(cls, inst, pose, (front - 0.1, 0, wheel_r + 0.88), (0.04, 0.2, 0.13), (60, 75, 95), Tex.GLASS)
        for side in (-1, 1):
            b.local_box(cls, inst, pose, (-0.3, side * 0.26, wheel_r - 0.02), (length * 0.22, 0.05, 0.06),
                        (200, 200, 205), Tex.METAL)
    else:  # bicycle: thin frame, saddle, handlebar
        b.local_box(cls, inst, pose, (0, 0, wheel_r + 0.2), (length * 0.3, 0.025, 0.2), frame_color, Tex.CARPAINT)
        b.local_box(cls, inst, pose, (-0.2, 0, wheel_r + 0.45), (0.12, 0.06, 0.03), (20, 20, 20), Tex.PLAIN)
        b.local_box(cls, inst, pose, (length / 2 - wheel_r, 0, wheel_r + 0.5), (0.03, 0.28, 0.03),
                    (50, 50, 50), Tex.METAL)


def add_bicycle(b, pose, cls="bicycle", inst=None):
    inst = b.instance(cls) if inst is None else inst
    _two_wheeler(b, cls, inst, pose, b.rng.uniform(0.32, 0.36), b.rng.uniform(1.6, 1.8), b.pick("bicycle"), False)
    return inst


def add_motorcycle(b, pose):
    inst = b.instance("motorcycle")
    _two_wheeler(b, "motorcycle", inst, pose, b.rng.uniform(0.3, 0.36), b.rng.uniform(1.9, 2.3),
                 b.pick("motorcycle"), True)


def add_motorcycle_group(b, x, y, side):
    """One to three motorcycles side by side, angled to the kerb as they are parked."""
    count = int(b.rng.integers(1, 4))
    for k in range(count):
        yaw = (np.pi / 2 if side > 0 else -np.pi / 2) + b.rng.choice([-1, 1]) * b.rng.uniform(0.6, 1.0)
        add_motorcycle(b, (x + (k - (count - 1) / 2) * 1.1, y, yaw))


def add_person(b, pose, cls="person", inst=None, base_z=0.0, height=None):
    rng = b.rng
    inst = b.instance(cls) if inst is None else inst
    height = height or rng.uniform(1.55, 1.9)
    x, y, yaw = pose
    shirt, pants, skin = b.pick("cloth"), b.pick("pants"), b.pick("skin")
    leg_h = height * 0.47
    if base_z == 0.0:
        for side in (-1, 1):
            b.local_box(cls, inst, pose, (0, side * 0.1, leg_h / 2), (0.1, 0.08, leg_h / 2), pants, Tex.CLOTH)
    torso_h = height * 0.33
    torso_z = base_z + leg_h + torso_h / 2 if base_z == 0.0 else base_z + torso_h / 2
    b.local_box(cls, inst, pose, (0, 0, torso_z), (0.13, 0.22, torso_h / 2), shirt, Tex.CLOTH)
    for side in (-1, 1):
        b.local_box(cls, inst, pose, (0.02, side * 0.28, torso_z - 0.05), (0.06, 0.06, torso_h * 0.45),
                    shirt, Tex.CLOTH)
    head_r = height * 0.065
    b.ellipsoid(cls, inst, (x, y, torso_z + torso_h / 2 + head_r * 1.1), (head_r, head_r * 0.9, head_r * 1.15),
                skin, Tex.SKIN)
    return inst


def add_bicyclist(b, pose):
    inst = b.instance("bicyclist")
    add_bicycle(b, pose, cls="bicyclist", inst=inst)
    add_person(b, pose, cls="bicyclist", inst=inst, base_z=0.95, height=b.rng.uniform(1.6, 1.85))
    x, y, yaw = pose
    for side in (-1, 1):  # legs down to the pedals
        b.local_box("bicyclist", inst, pose, (-0.05, side * 0.12, 0.68), (0.08, 0.07, 0.3), b.pick("pants"), Tex.CLOTH)


def add_tree(b, x, y):
    rng = b.rng
    trunk_h, trunk_r = rng.uniform(1.6, 3.5), rng.uniform(0.12, 0.3)
    b.cylinder("trunk", 0, (x, y), 0.0, trunk_h + 0.5, trunk_r, (95, 70, 45), Tex.BARK)
    crown = (rng.uniform(1.3, 3.2), rng.uniform(1.3, 3.2), rng.uniform(1.5, 3.2))
    green = (rng.uniform(30, 80), rng.uniform(90, 150), rng.uniform(25, 60))
    b.ellipsoid("vegetation", 0, (x, y, trunk_h + crown[2] * 0.8), crown, green, Tex.FOLIAGE)


def add_bush(b, x, y):
    rng = b.rng
    radii = (rng.uniform(0.6, 2.0), rng.uniform(0.5, 1.5), rng.uniform(0.4, 1.0))
    green = (rng.uniform(40, 90), rng.uniform(100, 150), rng.uniform(30, 60))
    b.ellipsoid("vegetation", 0, (x, y, radii[2] * 0.6), radii, green, Tex.FOLIAGE)


def add_pole(b, x, y, facing):
    rng = b.rng
    height, radius = rng.uniform(4.5, 9.0), rng.uniform(0.07, 0.14)
    grey = rng.uniform(90, 150)
    b.cylinder("pole", 0, (x, y), 0.0, height, radius, (grey, grey, grey + 5), Tex.METAL)
    if rng.random() < 0.6:  # a street lamp arm over the road
        arm = rng.uniform(1.0, 2.5)
        b.box("pole", 0, (x, y + facing * arm / 2, height - 0.15), (0.06, arm / 2, 0.06), 0.0,
              (grey, grey, grey), Tex.METAL)


def add_sign(b, x, y, facing_yaw):
    rng = b.rng
    height = rng.uniform(2.0, 3.0)
    b.cylinder("pole", 0, (x, y), 0.0, height, rng.uniform(0.035, 0.06), (150, 150, 155), Tex.METAL)
    size = rng.uniform(0.3, 0.45)
    tall = size * rng.choice([1.0, 1.0, 1.4])
    color = b.pick("sign")
    b.box("traffic-sign", 0, (x, y, height + tall * 0.9), (0.03, size, tall), facing_yaw, color, Tex.SIGN)


def add_building(b, x0, x1, y_near, side):
    rng = b.rng
    depth, height = rng.uniform(8, 16), rng.uniform(5, 22)
    y_center = y_near + side * depth / 2
    b.box("building", 0, ((x0 + x1) / 2, y_center, height / 2), ((x1 - x0) / 2, depth / 2, height / 2),
          0.0, b.pick("facade"), Tex.FACADE)


def add_fence(b, x0, x1, y):
    rng = b.rng
    height = rng.uniform(0.9, 1.8)
    b.box("fence", 0, ((x0 + x1) / 2, y, height / 2), ((x1 - x0) / 2, 0.04, height / 2), 0.0,
          b.pick("fence"), Tex.SLATS)


# -- the street ---------------------------------------------------------------------------
def sample_scene(rng: np.random.Generator, x_min: float, x_max: float, ego_x: tuple[float, float]) -> Scene:
    """A street from x_min to x_max; the ego drives its right lane from ego_x[0] to ego_x[1]."""
    b = SceneBuilder(rng)
    lanes_per_side = int(rng.integers(1, 3))
    lane_w = rng.uniform(3.0, 3.6)
    road_half = lanes_per_side * lane_w
    lanes = [k * lane_w for k in range(-lanes_per_side + 1, lanes_per_side)]
    ego_y = -lane_w / 2 if lanes_per_side == 1 else -lane_w * rng.choice([0.5, 1.5])
    parking, sidewalks, building_lines, object_lines = [], [], {}, {}
    for side in (-1, 1):
        edge = road_half
        if rng.random() < 0.45:
            width = rng.uniform(2.2, 2.6)
            parking.append(tuple(sorted((side * edge, side * (edge + width)))))
            object_lines.setdefault("parking", []).append((side, side * (edge + width / 2)))
            edge += width
        sw = rng.uniform(1.6, 4.0)
        sidewalks.append(tuple(sorted((side * edge, side * (edge + sw)))))
        b.box("sidewalk", 0, ((x_min + x_max) / 2, side * (edge + sw / 2), 0.06),
              ((x_max - x_min) / 2, sw / 2, 0.06), 0.0, (170, 168, 160), Tex.TILES)
        object_lines.setdefault("sidewalk", []).append((side, side * (edge + sw / 2), side * edge, side * (edge + sw)))
        edge += sw
        terrain_w = rng.choice([0.0, rng.uniform(2.0, 9.0)])
        object_lines.setdefault("terrain", []).append((side, side * edge, side * (edge + max(terrain_w, 2.5))))
        if rng.random() < 0.4:
            x = x_min
            while x < x_max:
                length = rng.uniform(10, 40)
                if rng.random() < 0.75:
                    add_fence(b, x, min(x + length, x_max), side * (edge + 0.1))
                x += length + rng.uniform(2, 12)
        building_lines[side] = edge + terrain_w + rng.uniform(0.5, 3.0)
    layout = GroundLayout(road_half, lanes, parking, sidewalks, [])

    # buildings, sometimes none on a side (open terrain with vegetation)
    for side, y_near in building_lines.items():
        if rng.random() < 0.15:
            continue
        x = x_min
        while x < x_max:
            length = rng.uniform(8, 35)
            add_building(b, x, min(x + length, x_max), side * y_near, side)
            x += length + (rng.uniform(2, 14) if rng.random() < 0.5 else 0.0)

    def along(lo_gap, hi_gap, start=x_min + 2):
        x = start + rng.uniform(0, hi_gap)
        while x < x_max - 2:
            yield x
            x += rng.uniform(lo_gap, hi_gap)

    for side, y0, y1 in object_lines["terrain"]:
        for x in along(6, 18):
            y = rng.uniform(min(y0, y1) + 0.8, max(y0, y1) - 0.8) if abs(y1 - y0) > 1.6 else (y0 + y1) / 2
            if b.free(x, y, 1.0):
                (add_tree if rng.random() < 0.6 else add_bush)(b, x, y)
                b.claim(x, y, 1.0)
    for side, yc, y_in, y_out in object_lines["sidewalk"]:
        curb = y_in + side * 0.35
        for x in along(14, 35):
            if b.free(x, curb, 0.5):
                add_pole(b, x, curb, -side)
                b.claim(x, curb, 0.5)
        for x in along(12, 30):  # traffic signs face the traffic of their side
            if b.free(x, curb, 0.6):
                add_sign(b, x, curb, 0.0 if side < 0 else np.pi)
                b.claim(x, curb, 0.6)
        for x in along(5, 14):
            y = rng.uniform(min(y_in, y_out) + 0.4, max(y_in, y_out) - 0.4)
            if b.free(x, y, 0.5):
                add_person(b, (x, y, rng.uniform(-np.pi, np.pi)))
                b.claim(x, y, 0.5)
        for x in along(6, 20):
            y = y_out - side * 0.5
            if b.free(x, y, 1.0):
                add = add_bicycle if rng.random() < 0.65 else add_motorcycle
                add(b, (x, y, rng.choice([0.0, np.pi]) + rng.normal(0, 0.15)))
                b.claim(x, y, 1.0)
    for side, yc in object_lines.get("parking", []):
        for x in along(5.5, 12):
            if b.free(x, yc, 2.4):
                kind = rng.random()
                pose = (x, yc, rng.choice([0.0, np.pi]) + rng.normal(0, 0.05))
                if kind < 0.5:
                    add_car(b, pose)
                elif kind < 0.75:
                    add_truck(b, pose)
                else:
                    add_motorcycle_group(b, x, yc, side)
                b.claim(x, yc, 2.4 if kind < 0.5 else 4.5 if kind < 0.75 else 1.8)
    # traffic in the lanes; the ego lane stays clear around the ego's path
    lane_centers = [(-road_half + lane_w * (k + 0.5)) for k in range(2 * lanes_per_side)]
    for yc in lane_centers:
        heading = 0.0 if yc < 0 else np.pi
        for x in along(9, 28):
            in_ego_lane = abs(yc - ego_y) < 0.5
            if in_ego_lane and ego_x[0] - 12 < x < ego_x[1] + 12:
                continue
            kind = rng.random()
            radius = 2.5 if kind < 0.5 else 5.0 if kind < 0.8 else 1.3
            if not b.free(x, yc, radius):
                continue
            pose = (x, yc + rng.normal(0, 0.25), heading + rng.normal(0, 0.04))
            if kind < 0.5:
                add_car(b, pose)
            elif kind < 0.8:
                add_truck(b, pose)
            else:
                add_bicyclist(b, pose)
            b.claim(x, yc, radius)
    # motorcycles parked at the kerb of sides without a parking strip (nobody rides one in the
    # world: SemanticKITTI labels riders as motorcyclist, a class this world does not have)
    parking_sides = {side for side, _ in object_lines.get("parking", [])}
    for side in (-1, 1):
        if side in parking_sides:
            continue
        y = side * (road_half - 0.9)
        for x in along(12, 35):
            if abs(y - ego_y) < 1.2 and ego_x[0] - 12 < x < ego_x[1] + 12:
                continue
            if b.free(x, y, 1.8):
                add_motorcycle_group(b, x, y, side)
                b.claim(x, y, 1.8)
    # bicyclists near the road edge
    for side in (-1, 1):
        y = side * (road_half - 0.8)
        for x in along(15, 40):
            if abs(y - ego_y) < 1.2 and ego_x[0] - 12 < x < ego_x[1] + 12:
                continue
            if b.free(x, y, 1.2):
                add_bicyclist(b, (x, y, (0.0 if side < 0 else np.pi) + rng.normal(0, 0.05)))
                b.claim(x, y, 1.2)
    return b.build(layout, ego_y)
