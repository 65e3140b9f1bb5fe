"""Loading CLIP models through open_clip, safely and without ever waiting on a network.

Sources, in order of precedence: a local checkpoint file; an open_clip pretrained tag (taken
from the local cache when present; otherwise downloaded by open_clip, after a short probe
shows the hub is reachable); random weights only when asked for. A custom architecture (the
demo teacher) is an open_clip model config JSON, registered with open_clip and then created
exactly like a built-in model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from zeroseg3d.errors import ConfigError, ZeroSeg3DError


class TeacherLoadError(ZeroSeg3DError):
    """The teacher's weights are missing, unreachable or unsafe to load."""


@dataclass
class LoadedCLIP:
    model: object            # open_clip CLIP model, eval mode, frozen
    tokenizer: object
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    identity: str            # names the weights, for cache keys
    image_size: int

    def normalize(self, pixels):
        """(B, 3, H, W) RGB in [0, 1] -> the input the image tower was trained on."""
        return normalize_pixels(pixels, self.mean, self.std)


def normalize_pixels(pixels, mean, std):
    """(B, 3, H, W) RGB in [0, 1] standardised with per-channel ``mean`` and ``std``."""
    import torch

    mean = torch.tensor(mean, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


HOW_TO = ("pass teacher.checkpoint=/path/to/weights.safetensors (or a torch weights file), or "
          "teacher.pretrained=TAG on a machine where open_clip can download it once into its "
          "cache, or teacher.random_init=true for tests and benchmarks")


def _file_digest(path: Path, full: bool = False) -> str:
    stat = path.stat()
    digest = _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return digest if full else digest[:16]


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:   # size and time: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def uses_quick_gelu(config, name: str) -> bool:
    """Whether the weights were trained with QuickGELU: the config says so, or open_clip records
    it for the pretrained tag, or for the pretrained file whose SHA-256 the local file has (the
    OpenAI download addresses carry it). Plain GELU on such weights subtly changes every feature."""
    from open_clip import pretrained

    if config.quick_gelu is not None:
        return bool(config.quick_gelu)
    if config.checkpoint:
        digest = _file_digest(Path(config.checkpoint), full=True)
        for model, tag in pretrained.list_pretrained():
            record = pretrained.get_pretrained_cfg(model, tag)
            if digest in record.get("url", ""):
                return bool(record.get("quick_gelu", False))
        return False
    if config.pretrained:
        return bool(pretrained.get_pretrained_cfg(name, config.pretrained).get("quick_gelu", False))
    return False


def register_model_config(path: str | Path) -> str:
    """Register a model config JSON with open_clip; returns the model name (the file stem)."""
    import open_clip

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: model config not found")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc})") from None
    if not {"embed_dim", "vision_cfg", "text_cfg"} <= set(config):
        raise ConfigError(f"{path}: not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")
    open_clip.add_model_config(path)
    return path.stem


def _hub_reachable(timeout: float) -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_pretrained(model: str, tag: str) -> str | None:
    """The local path of a pretrained tag's weights when open_clip's cache has them."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise TeacherLoadError(f"open_clip has no pretrained tag {tag!r} for {model!r}; "
                               f"known tags: {', '.join(tags) or 'none'}")
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return cfg["file"]
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        # open_clip's convention: 'org/model/' or 'org/model/filename'
        if hub.endswith("/"):
            repo_id, filename = hub.rstrip("/"), None
        else:
            repo_id, filename = hub.rsplit("/", 1)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for candidate in names:
            found = try_to_load_from_cache(repo_id, candidate)
            if isinstance(found, str):
                return found
    return None


def weights_identity(config) -> str:
    """The name of the weights a TeacherConfig describes, as :func:`load_clip` reports it, found
    without loading them (a local file is hashed): cache keys need it where the model is absent."""
    name = Path(config.model_config).stem if config.model_config else config.model
    # an activation set by hand changes every feature (None is fixed by the weights themselves)
    activation = "" if config.quick_gelu is None else f":quick_gelu={str(bool(config.quick_gelu)).lower()}"
    if config.checkpoint:
        path = Path(config.checkpoint)
        if not path.is_file():
            raise TeacherLoadError(f"{path}: teacher checkpoint not found; {HOW_TO}")
        return f"file:{_file_digest(path)}{activation}"
    if config.pretrained:
        return f"pretrained:{name}/{config.pretrained}{activation}"
    if config.random_init:
        return f"random:{name}:seed0{activation}"
    raise TeacherLoadError(f"no weights given for the teacher {name!r}; {HOW_TO}")


def load_clip(config, device: str = "cpu") -> LoadedCLIP:
    """The frozen CLIP model described by a TeacherConfig."""
    import open_clip
    import torch

    name = register_model_config(config.model_config) if config.model_config else config.model
    if name not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model {name!r}; pass teacher.model_config=FILE.json "
                          "for a custom architecture")
    weights_only = not config.allow_unsafe_pickle
    identity = weights_identity(config)
    source = None   # random weights
    if config.checkpoint:
        source = str(config.checkpoint)
    elif config.pretrained:
        source = _cached_pretrained(name, config.pretrained)
        if source is None:
            if not _hub_reachable(config.download_timeout_s):
                raise TeacherLoadError(
                    f"the weights of {name} / {config.pretrained} are not in open_clip's cache "
                    f"and the hub cannot be reached; {HOW_TO}")
            source = config.pretrained  # open_clip downloads it
    try:
        # random weights are drawn from a fixed seed, so that every process builds the same
        # teacher (its cache key cannot tell two random draws apart)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = open_clip.create_model(name, pretrained=source, device=device, weights_only=weights_only,
                                           force_quick_gelu=uses_quick_gelu(config, name))
    except Exception as exc:  # open_clip raises many kinds; report the cause plainly
        text = f"{type(exc).__name__}: {exc}"
        if weights_only and ("weights_only" in text or "Unpickl" in text):
            raise TeacherLoadError(
                f"{source}: refused, this checkpoint only loads by unpickling, which can run "
                "arbitrary code; convert it to safetensors, or pass teacher.allow_unsafe_pickle=true "
                "if you trust the file") from None
        raise TeacherLoadError(f"{source or name}: could not load the teacher ({text.splitlines()[0]})") from None
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    visual = model.visual
    image_size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    mean, std = image_statistics(visual)
    return LoadedCLIP(model, open_clip.get_tokenizer(name), mean, std, identity, int(image_size))


def image_statistics(visual) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the pixels an open_clip image tower was trained on: its own, else OpenAI's."""
    import open_clip

    mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    return tuple(mean), tuple(std)
