"""Class vocabularies: names, text synonyms, raw-id learning maps and seen/unseen splits.

A vocabulary is data (a YAML file under ``zeroseg3d/vocabularies`` or the user's own), never
inferred from paths. Train ids are 0..C-1 in file order; ``IGNORE_INDEX`` marks ignored points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import yaml

from zeroseg3d.errors import ConfigError, DataError

IGNORE_INDEX = -1
UNLABELED = "unlabeled"


def normalize_name(name: str) -> str:
    """'Traffic-Sign', 'traffic_sign' and 'traffic sign' all name the same class."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


MAX_RAW_ID = 0xFFFF   # SemanticKITTI keeps the semantic id in a label's lower 16 bits


@dataclass(frozen=True)
class ClassInfo:
    name: str
    synonyms: tuple[str, ...]
    raw_ids: tuple[int, ...] = ()
    color: tuple[int, int, int] = (128, 128, 128)


@dataclass(frozen=True)
class Split:
    """Which train ids have 3D labels (seen) and which must be learnt from the teacher."""

    name: str
    seen: tuple[int, ...]
    unseen: tuple[int, ...]


@dataclass
class Vocabulary:
    name: str
    classes: list[ClassInfo]
    ignored_raw_ids: tuple[int, ...] = ()
    raw_names: dict[int, str] = field(default_factory=dict)
    splits: dict[str, list[str] | str] = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.classes:
            raise ConfigError(f"{self.source}: vocabulary {self.name!r} has no classes")
        seen: dict[str, str] = {}
        for info in self.classes:
            key = normalize_name(info.name)
            if key in seen:
                raise ConfigError(f"{self.source}: class {info.name!r} appears twice")
            seen[key] = info.name
        self._lookup = {normalize_name(c.name): i for i, c in enumerate(self.classes)}
        self._learning_map = self._build_learning_map()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path) -> "Vocabulary":
        """A packaged vocabulary by name ('semantickitti', 'nuscenes') or a YAML file path."""
        path, name = Path(name_or_path), str(name_or_path)
        packaged = resources.files("zeroseg3d.vocabularies") / f"{name}.yaml"
        is_name = bool(name) and not any(c in name for c in "/\\.")
        # a file first; then a packaged name, even beside a folder of that name (a dataset
        # root called nuscenes/ or semantickitti/ in the working directory)
        if path.is_file():
            from zeroseg3d.utils.yaml_text import read_text_utf8

            text, source = read_text_utf8(path, lambda problem: ConfigError(f"{path}: {problem}")), str(path)
        elif is_name and packaged.is_file():
            text, source = packaged.read_text(), f"zeroseg3d/vocabularies/{name}.yaml"
        elif path.suffix in (".yaml", ".yml") or path.exists():
            raise ConfigError(f"{path}: vocabulary file not found")
        else:
            known = sorted(p.name[:-5] for p in resources.files("zeroseg3d.vocabularies").iterdir()
                           if p.name.endswith(".yaml"))
            raise ConfigError(f"unknown vocabulary {name!r}; packaged: {', '.join(known)}; "
                              "or pass a path to a vocabulary YAML file")
        from zeroseg3d.utils.yaml_text import parse_yaml, yaml_problem

        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: invalid YAML: {yaml_problem(exc)}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<memory>") -> "Vocabulary":
        if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
            raise ConfigError(f"{source}: a vocabulary is a mapping with a list of classes")

        def raw_id(value) -> int:
            if isinstance(value, bool) or int(value) != value or not 0 <= int(value) <= MAX_RAW_ID:
                raise ValueError(f"raw id {value!r} is not a whole number in 0..{MAX_RAW_ID}")
            return int(value)

        def color(values) -> tuple[int, ...]:
            values = tuple(int(v) for v in values)
            if len(values) != 3 or not all(0 <= v <= 255 for v in values):
                raise ValueError(f"color {list(values)} is not three values in 0..255")
            return values

        try:
            classes = [
                ClassInfo(
                    name=str(c["name"]),
                    synonyms=tuple(str(s) for s in c.get("synonyms") or [c["name"]]),
                    raw_ids=tuple(raw_id(r) for r in c.get("raw_ids", [])),
                    color=color(c.get("color", (128, 128, 128))),
                )
                for c in data["classes"]
            ]
            ignored = tuple(raw_id(r) for r in data.get("ignored") or [])
            raw_names = {raw_id(k): str(v) for k, v in (data.get("raw_names") or {}).items()}
            splits = dict(data.get("splits") or {})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{source}: malformed vocabulary ({exc})") from None
        return cls(name=str(data.get("name", Path(source).stem)), classes=classes, ignored_raw_ids=ignored,
                   raw_names=raw_names, splits=splits, source=source)

    @classmethod
    def from_names(cls, names: Iterable[str], name: str = "custom") -> "Vocabulary":
        """An open vocabulary from free text: each name is its own single synonym."""
        names = [n.strip() for n in names if n.strip()]
        return cls(name=name, classes=[ClassInfo(n, (n,)) for n in names])

    def restrict(self, names: Sequence[str]) -> "Vocabulary":
        """The same vocabulary with only ``names`` (in this vocabulary's order); the raw ids
        of the other classes become ignored, and splits keep their classes that remain."""
        keep = sorted({self.index(n) for n in names})
        kept_names = {normalize_name(self.classes[i].name) for i in keep}
        dropped = [r for i, c in enumerate(self.classes) if i not in keep for r in c.raw_ids]
        splits = {}
        for split_name, unseen in self.splits.items():
            splits[split_name] = unseen if unseen == "all" else [
                n for n in unseen if normalize_name(n) in kept_names]
        return Vocabulary(name=self.name, classes=[self.classes[i] for i in keep],
                          ignored_raw_ids=tuple(self.ignored_raw_ids) + tuple(dropped),
                          raw_names=dict(self.raw_names), splits=splits,
                          source=f"{self.source} restricted to {len(keep)} classes")

    # -- class names --------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def colors(self) -> np.ndarray:
        """(C, 3) uint8 RGB colours."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    def index_of_name_or_synonym(self, name: str) -> int | None:
        """The class a name or one of the synonyms of exactly one class names, else None
        ('person' is nuScenes' pedestrian)."""
        key = normalize_name(name)
        if key in self._lookup:
            return self._lookup[key]
        found = {i for i, c in enumerate(self.classes) if key in {normalize_name(s) for s in c.synonyms}}
        return found.pop() if len(found) == 1 else None

    def index(self, name: str) -> int:
        try:
            return self._lookup[normalize_name(name)]
        except KeyError:
            raise ConfigError(
                f"{self.source}: unknown class name {name!r} in vocabulary {self.name!r}; "
                f"known: {', '.join(self.names)}"
            ) from None

    def synonyms(self, index: int) -> tuple[str, ...]:
        return self.classes[index].synonyms

    # -- raw ids ------------------------------------------------------------------------
    @property
    def has_raw_ids(self) -> bool:
        return any(c.raw_ids for c in self.classes)

    def _build_learning_map(self) -> np.ndarray:
        raw_ids = [r for c in self.classes for r in c.raw_ids] + list(self.ignored_raw_ids)
        size = max(raw_ids, default=-1) + 1
        lut = np.full(size, IGNORE_INDEX - 1, dtype=np.int64)  # IGNORE_INDEX-1 marks unknown
        lut[list(self.ignored_raw_ids)] = IGNORE_INDEX
        for index, info in enumerate(self.classes):
            for raw in info.raw_ids:
                if lut[raw] >= 0:
                    raise ConfigError(f"{self.source}: raw id {raw} maps to two classes")
                lut[raw] = index
        return lut

    @property
    def learning_map(self) -> dict[int, int]:
        return {r: int(v) for r, v in enumerate(self._learning_map) if v >= IGNORE_INDEX}

    def map_raw(self, raw: np.ndarray, path: str | Path | None = None) -> np.ndarray:
        """Raw semantic ids -> train ids (IGNORE_INDEX for ignored ids).

        Raises DataError naming ``path`` when a raw id is not in the vocabulary.
        """
        raw = np.asarray(raw, dtype=np.int64)
        lut = self._learning_map
        out_of_range = (raw < 0) | (raw >= len(lut))
        mapped = lut[np.where(out_of_range, 0, raw)] if len(lut) else np.zeros_like(raw)
        unknown = out_of_range | (mapped < IGNORE_INDEX)
        if unknown.any():
            ids = np.unique(raw[unknown])[:10].tolist()
            raise DataError(
                path, f"{int(unknown.sum())} labels have raw ids unknown to vocabulary "
                f"{self.name!r} ({self.source}): {ids}"
            )
        return mapped

    def to_raw(self, labels: np.ndarray) -> np.ndarray:
        """Train ids -> the first raw id of each class (the inverse map); ignore -> 0."""
        if not self.has_raw_ids:
            raise ConfigError(f"vocabulary {self.name!r} has no raw ids to map back to")
        inverse = np.array([c.raw_ids[0] if c.raw_ids else 0 for c in self.classes], np.uint32)
        labels = np.asarray(labels, dtype=np.int64)
        return np.where(labels >= 0, inverse[np.clip(labels, 0, None)], 0).astype(np.uint32)

    def raw_name(self, raw_id: int) -> str:
        return self.raw_names.get(int(raw_id), f"raw-{int(raw_id)}")

    # -- splits -------------------------------------------------------------------------
    def split(self, name: str = "default", unseen: Sequence[str] | None = None) -> Split:
        """Seen/unseen split by name from the vocabulary file, or an explicit unseen list.

        The special value ``all`` (annotation-free) makes every class unseen.
        """
        if unseen is None:
            if name not in self.splits:
                raise ConfigError(
                    f"{self.source}: unknown split {name!r}; known: {', '.join(self.splits)}"
                )
            unseen = self.splits[name]
        if unseen == "all" or list(unseen) == ["all"]:
            unseen_idx = tuple(range(self.num_classes))
        else:
            unseen_idx = tuple(sorted({self.index(n) for n in unseen}))
        seen_idx = tuple(i for i in range(self.num_classes) if i not in unseen_idx)
        return Split(name=name, seen=seen_idx, unseen=unseen_idx)


def build_vocabulary(data) -> Vocabulary:
    """The vocabulary a DataConfig names (``data.vocabulary``), restricted to ``data.classes``
    when given."""
    vocabulary = Vocabulary.load(data.vocabulary)
    return vocabulary.restrict(data.classes) if data.classes else vocabulary
