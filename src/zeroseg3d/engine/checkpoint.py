"""Checkpoints: everything to resume or to use a model, loadable without unpickling code.

Contents: model, optimizer and scheduler state; epoch, step and phase; RNG states; the
resolved config (YAML text); package version; vocabulary names and their text embeddings
with a hash of those. Written atomically; read with torch.load(weights_only=True).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from zeroseg3d.errors import ZeroSeg3DError
from zeroseg3d.utils.atomic import atomic_write_bytes

FORMAT = 1


class CheckpointError(ZeroSeg3DError):
    pass


def text_hash(text_embeddings: torch.Tensor, names: list[str]) -> str:
    digest = hashlib.sha256("\n".join(names).encode())
    digest.update(text_embeddings.float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_checkpoint(path: str | Path, state: dict) -> Path:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable zeroseg3d checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    # compared by type first: a tensor stored under "format" must not reach ``==``
    if not isinstance(state, dict) or type(state.get("format")) is not type(FORMAT) or state["format"] != FORMAT \
            or "model" not in state:
        raise CheckpointError(f"{path}: not a zeroseg3d checkpoint (format {FORMAT})")
    check_model_state(state, path)
    return state


def check_model_state(state: dict, path) -> None:
    """What using the model needs, consistent: weights, the config text, the vocabulary and
    one finite text embedding of ``embed_dim`` values per class."""
    problems = []
    if not isinstance(state.get("model"), dict) or not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        problems.append("its weights are not a mapping of tensors")
    if not isinstance(state.get("config"), str):
        problems.append("it holds no config text")
    names = state.get("vocabulary")
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        problems.append("its vocabulary is not a list of class names")
    text = state.get("text_embeddings")
    if not isinstance(text, torch.Tensor) or text.ndim != 2 or not text.is_floating_point():
        problems.append("its text embeddings are not a (classes, dim) float tensor")
    elif isinstance(names, (list, tuple)) and len(names) != len(text):
        problems.append(f"{len(names)} class names but {len(text)} text embeddings")
    elif not torch.isfinite(text).all():
        problems.append("its text embeddings hold NaN or inf")
    elif type(state.get("embed_dim")) is not int or state["embed_dim"] != text.shape[1]:
        problems.append(f"embed_dim {state.get('embed_dim')!r} but {text.shape[1]}-d text embeddings")
    if problems:
        raise CheckpointError(f"{path}: not a usable zeroseg3d checkpoint: {'; '.join(problems)}")


def rng_state(generator: torch.Generator | None = None) -> dict:
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "numpy": {"keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos)},
            "generator": None if generator is None else generator.get_state()}


def restore_rng(state: dict, generator: torch.Generator | None = None) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"]["keys"].numpy().astype("uint32"), state["numpy"]["pos"], 0, 0.0))
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
