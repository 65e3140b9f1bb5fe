"""nuScenes reader through nuscenes-devkit: keyframe LIDAR_TOP, lidarseg labels, 6 cameras.

The devkit trusts its tables: a malformed one escapes as a KeyError, a JSON error, an
assertion or a loop that never ends. Here every table the devkit loads is checked when it is
read (a list of records with string tokens, and the fields the devkit's index and this reader
use, each of its kind), the references between tables before the devkit indexes them, and the
chain of a scene's samples as it is walked; a bad table is refused with one line naming it.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path, PurePosixPath

import numpy as np

from zeroseg3d.datasets.base import DATASETS, FrameDataset
from zeroseg3d.datasets.frame import Camera, Frame
from zeroseg3d.datasets.io import (
    check_image_size,
    check_image_size_value,
    check_intrinsics,
    read_image_size,
    read_label_file,
    read_nuscenes_bin,
)
from zeroseg3d.datasets.vocabulary import Vocabulary, build_vocabulary
from zeroseg3d.errors import DataError
from zeroseg3d.geometry.transforms import invert_transform, make_transform, quaternion_to_matrix

CAMERA_CHANNELS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK",
                   "CAM_BACK_LEFT", "CAM_FRONT_LEFT")

# The fields of each table that the devkit's index or this reader reads, and their kinds:
# "token" a non-empty string, "link" a string that may be empty (the end of a chain), "path" a
# file name relative to the dataset root, "vector3" three finite numbers, "quaternion" four
# finite numbers of norm 1 (to 1e-2), "list" a list, str / int / bool themselves.
TABLE_FIELDS: dict[str, dict[str, object]] = {
    "category": {"name": str},
    "attribute": {},
    "visibility": {},
    "instance": {"category_token": "token"},
    "sensor": {"channel": str, "modality": str},
    "calibrated_sensor": {"sensor_token": "token", "translation": "vector3", "rotation": "quaternion",
                          "camera_intrinsic": "list"},
    "ego_pose": {"translation": "vector3", "rotation": "quaternion"},
    "log": {},
    "scene": {"name": str, "first_sample_token": "token"},
    "sample": {"next": "link"},
    "sample_data": {"sample_token": "token", "calibrated_sensor_token": "token", "ego_pose_token": "token",
                    "is_key_frame": bool, "filename": "path", "width": int, "height": int},
    "sample_annotation": {"instance_token": "token", "sample_token": "token"},
    "map": {"log_tokens": "list", "filename": "path"},
    "lidarseg": {"filename": "path"},
    "panoptic": {"filename": "path"},
}
# (table, field) -> the table whose token it names, as the devkit's index follows them
# (sample_data's sample_token only for key frames)
REFERENCES = {("instance", "category_token"): "category",
              ("calibrated_sensor", "sensor_token"): "sensor",
              ("scene", "first_sample_token"): "sample",
              ("sample", "next"): "sample",
              ("sample_data", "calibrated_sensor_token"): "calibrated_sensor",
              ("sample_data", "ego_pose_token"): "ego_pose",
              ("sample_data", "sample_token"): "sample",
              ("sample_annotation", "instance_token"): "instance",
              ("sample_annotation", "sample_token"): "sample"}


def _field_problem(value, kind) -> str | None:
    """What is wrong with ``value`` as a field of ``kind`` (None: nothing)."""
    if kind == "token":
        return None if isinstance(value, str) and value else "must be a non-empty token string"
    if kind == "link":
        return None if isinstance(value, str) else "must be a token string (empty at the end)"
    if kind == "path":
        if not isinstance(value, str) or not value:
            return "must be a file name"
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or "\\" in value or ":" in value:
            return f"must be a file name inside the dataset root, not {value!r}"
        return None
    if kind == "list":
        return None if isinstance(value, list) else "must be a list"
    if kind in ("vector3", "quaternion"):
        size = 3 if kind == "vector3" else 4
        if (not isinstance(value, list) or len(value) != size
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in value)):
            return f"must be {size} finite numbers"
        if kind == "quaternion" and abs(math.sqrt(sum(v * v for v in value)) - 1) > 1e-2:
            return "must be a unit quaternion (w, x, y, z)"
        return None
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    return None if isinstance(value, kind) else f"must be a {kind.__name__}"


def _all_fine(values: list, kind) -> bool:
    """Whether every value is of ``kind``: the quick test of a whole column (tables of millions
    of records). It may refuse what the exact test (``_field_problem``) accepts, never the
    reverse: the first bad record is looked for only when it fails."""
    if kind in ("token", "link", "path", str):
        if not all(type(v) is str for v in values):
            return False
        if kind == "token":
            return all(values)
        if kind == "path":   # conservative: a name with ".." anywhere takes the exact test
            return all(v and v[0] != "/" and "\\" not in v and ":" not in v and ".." not in v for v in values)
        return True
    if kind is int:
        return all(type(v) is int for v in values)
    if kind is bool:
        return all(type(v) is bool for v in values)
    if kind == "list":
        return all(type(v) is list for v in values)
    size = 3 if kind == "vector3" else 4
    if not all(type(v) is list and len(v) == size and all(type(x) is float or type(x) is int for x in v)
               for v in values):
        return False
    array = np.array(values, dtype=np.float64).reshape(-1, size)
    if not np.isfinite(array).all():
        return False
    return kind == "vector3" or bool((np.abs(np.linalg.norm(array, axis=1) - 1) <= 1e-2).all())


def read_table(path: Path, name: str) -> list[dict]:
    """The records of one devkit table; those of a table the devkit indexes (``TABLE_FIELDS``)
    each checked for a token and the fields listed there."""
    if not path.is_file():
        raise DataError(path, "table not found")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise DataError(path, f"not valid JSON: {type(exc).__name__}") from None
    if not isinstance(records, list):
        raise DataError(path, f"a table must be a list of records, not a {type(records).__name__}")
    fields = TABLE_FIELDS.get(name)
    if fields is None:   # a table the devkit loads but does not index (image_annotations)
        return records
    fine = all(type(r) is dict for r in records)
    try:
        fine = fine and _all_fine([r["token"] for r in records], "token") and all(
            _all_fine([r[field] for r in records], kind) for field, kind in fields.items())
    except KeyError:
        fine = False
    if not fine:
        _first_problem(records, fields, path)
    return records


def _first_problem(records: list, fields: dict, path: Path) -> None:
    """Raises the DataError of the first record that is not as ``fields`` says."""
    for number, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(path, f"record {number} must be a mapping, not a {type(record).__name__}")
        token = record.get("token")
        if not isinstance(token, str) or not token:
            raise DataError(path, f"record {number} has no token string")
        for field, kind in fields.items():
            if field not in record:
                raise DataError(path, f"record {number} (token {token!r}) lacks {field!r}")
            problem = _field_problem(record[field], kind)
            if problem:
                raise DataError(path, f"record {number} (token {token!r}): {field!r} {problem}")


def check_references(tables: dict[str, list[dict]], table_root: Path) -> None:
    """Every token one table names in another is there, as the devkit's index expects."""
    tokens = {name: {r["token"] for r in rows} for name, rows in tables.items()}
    for name, rows in tables.items():
        if len(tokens[name]) != len(rows):
            raise DataError(table_root / f"{name}.json", "two records share a token")
    for (name, field), target in REFERENCES.items():
        rows = tables[name]
        if (name, field) == ("sample_data", "sample_token"):
            rows = [r for r in rows if r["is_key_frame"]]
        if tokens[target].issuperset(r[field] for r in rows if r[field]):
            continue
        record = next(r for r in rows if r[field] and r[field] not in tokens[target])
        raise DataError(table_root / f"{name}.json", f"record {record['token']!r}: {field} "
                        f"{record[field]!r} is not a token of {target}.json")
    for record in tables["map"]:
        if not all(isinstance(log, str) for log in record["log_tokens"]):
            raise DataError(table_root / "map.json", f"record {record['token']!r}: log_tokens must be token strings")
    mapped = {log for record in tables["map"] for log in record["log_tokens"]}
    for record in tables["log"]:
        if record["token"] not in mapped:
            raise DataError(table_root / "map.json", f"no map lists log {record['token']!r}")


def check_label_categories(categories: list[dict], colormap: dict, path: Path) -> None:
    """With lidarseg or panoptic labels every category needs a whole-number index (the value
    of its points in the label files), once, and a name the devkit knows."""
    indices = set()
    for record in categories:
        index, name = record.get("index"), record["name"]
        if type(index) is not int or not 0 <= index <= 255:
            raise DataError(path, f"category {name!r} needs an index from 0 to 255 (the value of its points "
                            "in the label files)")
        if index in indices:
            raise DataError(path, f"two categories have index {index}")
        indices.add(index)
        if name not in colormap:
            raise DataError(path, f"category {name!r} is not one of nuScenes-lidarseg's categories")


@functools.cache
def _devkit_class():
    """nuscenes-devkit's NuScenes with its tables read by ``read_table`` and checked by
    ``check_references`` before it indexes them."""
    try:
        from nuscenes.nuscenes import NuScenes
    except ImportError as exc:
        raise DataError(None, f"reading nuScenes needs nuscenes-devkit ({exc})") from None

    class CheckedNuScenes(NuScenes):
        def __load_table__(self, table_name):
            records = read_table(Path(self.table_root) / f"{table_name}.json", table_name)
            if table_name in ("lidarseg", "panoptic"):   # the devkit then colours the categories
                check_label_categories(self.category, self.colormap, Path(self.table_root) / "category.json")
            return records

        def __make_reverse_index__(self, verbose):
            check_references({name: getattr(self, name) for name in self.table_names}, Path(self.table_root))
            super().__make_reverse_index__(verbose)

    CheckedNuScenes.__module__, CheckedNuScenes.__qualname__ = __name__, "CheckedNuScenes"
    return CheckedNuScenes


def __getattr__(name: str):
    """``CheckedNuScenes`` made on first use (the devkit is imported lazily), so that pickle finds
    the class of a dataset's tables in a process that has not read any."""
    if name == "CheckedNuScenes":
        return _devkit_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_tables(root: Path, version: str):
    """The devkit's NuScenes over ``root``/``version`` (``CheckedNuScenes``); what the devkit
    itself still refuses (as many label files as lidarseg records, a map file that is there, a
    category.json with indices) as a DataError naming the table folder or the file."""
    table_root = root / version
    try:
        return _devkit_class()(version=version, dataroot=str(root), verbose=False)
    except DataError:
        raise
    except AssertionError as exc:
        raise DataError(table_root, str(exc).removeprefix("Error: ")) from None
    except FileNotFoundError as exc:
        raise DataError(exc.filename or table_root, "not found (the tables refer to it)") from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DataError(table_root, f"the devkit cannot read these tables: {type(exc).__name__} {exc}") from None


def _pose(record: dict) -> np.ndarray:
    """calibrated_sensor or ego_pose record -> (4, 4) sensor->ego or ego->global."""
    return make_transform(quaternion_to_matrix(record["rotation"]), record["translation"])


@DATASETS.register("nuscenes")
class NuScenesLidarSeg(FrameDataset):
    """Keyframes of the scenes in a devkit split ('mini_train', 'mini_val', 'train', 'val',
    'test') or 'all'. Frame ids are sample tokens."""

    def __init__(self, root: str | Path, version: str = "v1.0-trainval", split: str = "train",
                 vocabulary: Vocabulary | str = "nuscenes"):
        self.root = Path(root)
        self.vocabulary = (vocabulary if isinstance(vocabulary, Vocabulary)
                           else Vocabulary.load(vocabulary))
        if not (self.root / version).is_dir():
            raise DataError(self.root / version,
                            f"nuScenes tables for version {version!r} not found")
        self.tables = self.root / version
        self.nusc = open_tables(self.root, version)
        from nuscenes.utils.splits import create_splits_scenes

        if split == "all":
            scene_names = {scene["name"] for scene in self.nusc.scene}
        else:
            splits = create_splits_scenes(verbose=False)
            if split not in splits:
                raise DataError(None, f"unknown nuScenes split {split!r}; "
                                f"known: {', '.join(sorted(splits))}, all")
            scene_names = set(splits[split])
        self._tokens: list[str] = []
        self._scenes: list[str] = []
        seen: set[str] = set()
        for scene in self.nusc.scene:
            if scene["name"] not in scene_names:
                continue
            token = scene["first_sample_token"]
            while token:
                if token in seen:
                    raise DataError(self.tables / "sample.json",
                                    f"sample {token!r} is reached twice (scene {scene['name']!r}): "
                                    "the next tokens form a loop or two scenes share samples")
                seen.add(token)
                self._tokens.append(token)
                self._scenes.append(scene["name"])
                token = self.nusc.get("sample", token)["next"]
        if not self._tokens:
            raise DataError(self.root, f"no samples of split {split!r} in version {version!r}")
        # v1.0-test comes with an empty lidarseg table: its frames are unlabelled
        self.has_lidarseg = bool(getattr(self.nusc, "lidarseg", None))
        if self.has_lidarseg:
            self._categories = self._check_categories()

    def _check_categories(self) -> np.ndarray:
        """The label files hold category indices: category.json must number the categories as
        the vocabulary reads them, or every label would be misread. Returns which of the 256
        label values it defines."""
        path = self.tables / "category.json"
        defined = np.zeros(256, bool)
        for record in self.nusc.category:
            index, name = record["index"], record["name"]
            defined[index] = True
            expected = self.vocabulary.raw_names.get(index)
            if expected is not None and expected != name:
                raise DataError(path, f"category index {index} is {name!r}, but vocabulary "
                                f"{self.vocabulary.name!r} reads label {index} as {expected!r}")
        return defined

    @classmethod
    def from_config(cls, data_config, split: str) -> "NuScenesLidarSeg":
        return cls(data_config.root, data_config.version, split, build_vocabulary(data_config))

    @property
    def frame_ids(self) -> list[str]:
        return self._tokens

    @property
    def frame_sequences(self) -> list[str]:
        return self._scenes

    @property
    def prediction_names(self) -> list[str]:
        """The token of each sample's LIDAR_TOP key frame: nuScenes-lidarseg's evaluation reads
        ``<token>_lidarseg.bin`` (the sample token where a sample has no LIDAR_TOP: refused
        when it is read)."""
        return [self.nusc.get("sample", token)["data"].get("LIDAR_TOP", token) for token in self._tokens]

    def _camera(self, channel: str, token: str, T_global_from_lidar: np.ndarray) -> Camera:
        record = self.nusc.get("sample_data", token)
        calib = self.nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
        # lidar -> ego(lidar time) -> global -> ego(camera time) -> camera
        T_global_from_cam = _pose(self.nusc.get("ego_pose", record["ego_pose_token"])) @ _pose(calib)
        T_cam_from_lidar = invert_transform(T_global_from_cam) @ T_global_from_lidar
        size = check_image_size_value((record["width"], record["height"]), self.tables / "sample_data.json",
                                      f"{channel} sample_data {token!r} width and height")
        image_path = self.root / record["filename"]
        if image_path.parent.is_dir():
            check_image_size(image_path, read_image_size(image_path), size)
        else:
            image_path = None  # a lidar-only download: the camera is known, its image is not
        try:
            K = np.asarray(calib["camera_intrinsic"], dtype=np.float64)
        except (TypeError, ValueError):
            K = np.zeros(0)
        K = check_intrinsics(K, self.tables / "calibrated_sensor.json",
                             f"{channel} camera_intrinsic ({calib['token']!r})")
        return Camera(channel, K, T_cam_from_lidar, size, image_path)

    def load(self, index: int) -> Frame:
        sample = self.nusc.get("sample", self._tokens[index])
        lidar_token = sample["data"].get("LIDAR_TOP")
        if lidar_token is None:
            raise DataError(self.tables / "sample_data.json",
                            f"sample {sample['token']!r} has no LIDAR_TOP key frame")
        lidar = self.nusc.get("sample_data", lidar_token)
        scan_path = self.root / lidar["filename"]
        points = read_nuscenes_bin(scan_path)
        calib = self.nusc.get("calibrated_sensor", lidar["calibrated_sensor_token"])
        T_global_from_lidar = _pose(self.nusc.get("ego_pose", lidar["ego_pose_token"])) @ _pose(calib)
        cameras = [self._camera(ch, sample["data"][ch], T_global_from_lidar)
                   for ch in CAMERA_CHANNELS if ch in sample["data"]]
        raw = labels = None
        if self.has_lidarseg:
            try:
                label_path = self.root / self.nusc.get("lidarseg", lidar_token)["filename"]
            except KeyError:
                raise DataError(self.tables / "lidarseg.json", f"no record for the LIDAR_TOP key frame "
                                f"{lidar_token!r} of sample {sample['token']!r}") from None
            raw = read_label_file(label_path, len(points), dtype=np.uint8)
            undefined = ~self._categories[raw]
            if undefined.any():
                raise DataError(label_path, f"label {int(raw[undefined][0])} is no category of "
                                f"{self.tables / 'category.json'} ({int(undefined.sum())} points)")
            raw = raw.astype(np.uint32)
            labels = self.vocabulary.map_raw(raw, label_path)
        return Frame(frame_id=sample["token"], points=points, cameras=cameras, labels=labels,
                     raw_labels=raw, pose=T_global_from_lidar, source=scan_path)
