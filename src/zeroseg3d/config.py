"""Typed configuration: dataclasses, YAML files composed from a base, dotted overrides.

A config file may name the files it builds on with ``_base_`` (a path or a list of paths,
relative to the file). Later files and then command-line overrides (``data.voxel_size=0.1``)
win. Unknown keys and wrongly typed values are refused with the offending key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import List, Optional, Sequence

import yaml

from zeroseg3d.errors import ConfigError
from zeroseg3d.geometry.config import AugmentConfig, PairingConfig
from zeroseg3d.engine.config import TrainConfig
from zeroseg3d.losses.config import LossConfig
from zeroseg3d.models.config import ModelConfig
from zeroseg3d.teacher.config import TeacherConfig

BASE_KEY = "_base_"


@dataclass
class DataConfig:
    dataset: str = "semantickitti"      # registered reader: semantickitti, nuscenes, custom
    root: str = "data/semantickitti"    # relative paths are relative to the working directory
    split: str = "train"                # named split of the dataset (train, val, test, mini_train...)
    sequences: Optional[List[str]] = None  # SemanticKITTI: explicit sequences, overriding split
    val_sequences: Optional[List[str]] = None  # SemanticKITTI: explicit sequences of the val split
    version: str = "v1.0-trainval"      # nuScenes table version
    vocabulary: str = "semantickitti"   # packaged vocabulary name or a vocabulary YAML path
    classes: Optional[List[str]] = None  # evaluate only these classes of the vocabulary
    unseen_split: str = "default"       # named seen/unseen split of the vocabulary
    unseen_classes: Optional[List[str]] = None  # explicit unseen classes, overriding unseen_split
    image_size: Optional[List[int]] = None  # [width, height] of images the calibration lacks
    voxel_size: float = 0.05
    pairing: PairingConfig = field(default_factory=PairingConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not 0 < self.voxel_size <= 10:
            raise ConfigError(f"data.voxel_size must be in (0, 10] metres, not {self.voxel_size}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ConfigError(f"data.image_size must be [width, height] in pixels, not {self.image_size}")


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs"            # a run writes into output_dir/name
    seed: int = 0
    eval_split: Optional[str] = "val"   # evaluated after training (None: skip)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"run.seed must be >= 0, not {self.seed}")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    from zeroseg3d.utils.yaml_text import parse_yaml, read_text_utf8, yaml_problem

    text = read_text_utf8(path, lambda problem: ConfigError(f"{path}: {problem}"))
    try:
        data = parse_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at top level")
    return data


def _compose(path: Path, chain: tuple[Path, ...] = ()):
    """The OmegaConf node of ``path`` merged over its bases, depth first."""
    from omegaconf import OmegaConf

    path = path.resolve()
    if path in chain:
        raise ConfigError(f"{path}: _base_ cycle through {' -> '.join(map(str, chain))}")
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must name a config file or a list of them, not {bases!r}")
    merged = OmegaConf.create()
    for base in bases:
        merged = OmegaConf.merge(merged, _compose(path.parent / base, chain + (path,)))
    return OmegaConf.merge(merged, OmegaConf.create(data))


@cache
def _schema():
    """The typed schema of Config, built once per process (about a tenth of a second each time:
    omegaconf walks every dataclass); read-only, as every merge copies it first."""
    from omegaconf import OmegaConf

    schema = OmegaConf.structured(Config)
    OmegaConf.set_readonly(schema, True)
    return schema


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """A typed Config from a YAML file (or the defaults) and dotted ``key=value`` overrides."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = _schema()
    where = str(path) if path is not None else "defaults"
    try:
        if path is not None:
            schema = OmegaConf.merge(schema, _compose(Path(path)))
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"override {bad[0]!r} is not of the form key=value")
        where = "command-line overrides"
        schema = OmegaConf.merge(schema, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(schema)
    except OmegaConfBaseException as exc:
        message = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"{where}: {message}" + (f" (key {key})" if key else "")) from None


# Keys whose default changed: a stored config written before the key existed was trained with
# the value given here, not with today's default.
STORED_DEFAULTS = {("model", "input_norm"): False}
# Keys a stored config may have under an older name: (section, old) -> (new, value for each old value)
STORED_RENAMES = {("train", "amp"): ("precision", {True: "auto", False: "fp32"})}


def load_config_text(text: str, source: str = "<text>", overrides: Sequence[str] = ()) -> Config:
    """A Config from YAML text stored with a run (a checkpoint's, a bundle's) and dotted
    overrides; keys the text lacks take their value from STORED_DEFAULTS, then the defaults."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from zeroseg3d.utils.yaml_text import parse_yaml

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"override {bad[0]!r} is not of the form key=value")
    try:
        data = parse_yaml(text) or {}
        for (section, key), value in STORED_DEFAULTS.items():
            if isinstance(data, dict) and isinstance(data.get(section), dict):
                data[section].setdefault(key, value)
        for (section, old), (new, values) in STORED_RENAMES.items():
            if isinstance(data, dict) and isinstance(data.get(section), dict) and old in data[section]:
                data[section].setdefault(new, values.get(data[section].pop(old), data[section].get(new)))
        merged = OmegaConf.merge(_schema(), OmegaConf.create(data),
                                 OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"{source}: {str(exc).splitlines()[0]}" + (f" (key {key})" if key else "")) from None


def config_to_yaml(config: Config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(config))


def save_config(config: Config, directory: str | Path, filename: str = "config.yaml") -> Path:
    """Write the resolved config next to a run's outputs (atomically); returns its path."""
    from zeroseg3d import __version__
    from zeroseg3d.utils.atomic import atomic_write_text

    target = Path(directory) / filename
    header = f"# resolved config, written by zeroseg3d {__version__}\n"
    atomic_write_text(target, header + config_to_yaml(config))
    return target
