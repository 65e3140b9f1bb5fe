"""A trained model as a self-contained folder: it predicts with any class names on a machine
that has neither the teacher's weights nor the training run's files.

    bundle.json         format, package version, the resolved config (YAML text), the
                        vocabulary, the CLIP model's open_clip config and identity
    student.safetensors the student's weights and the vocabulary's text embeddings
    text.safetensors    the CLIP text tower (every weight outside ``visual.``)

Only safetensors and JSON: nothing in a bundle is code or pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

from zeroseg3d import __version__
from zeroseg3d.engine.checkpoint import CheckpointError
from zeroseg3d.utils.atomic import atomic_write_bytes, atomic_write_text

FORMAT = 1
MANIFEST = "bundle.json"


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def clip_model_config(teacher_config) -> tuple[str, dict]:
    """(open_clip model name, its model config) of the teacher a config names."""
    import open_clip

    from zeroseg3d.teacher.loading import register_model_config

    name = register_model_config(teacher_config.model_config) if teacher_config.model_config else teacher_config.model
    config = open_clip.get_model_config(name)
    if config is None:
        raise CheckpointError(f"open_clip has no model config for {name!r}")
    if config.get("text_cfg", {}).get("hf_tokenizer_name"):
        raise CheckpointError(f"{name}: its tokenizer downloads from the Hugging Face hub; bundles keep "
                              "open_clip's own tokenizer only")
    return name, config


def export_bundle(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the bundle of a checkpoint into the folder ``out`` (created; files atomic)."""
    from safetensors.torch import save as save_bytes

    from zeroseg3d.engine.predict import Segmenter
    from zeroseg3d.teacher.loading import load_clip, uses_quick_gelu

    segmenter = Segmenter.from_checkpoint(checkpoint, "cpu")
    teacher = segmenter._teacher_config()
    name, model_config = clip_model_config(teacher)
    clip = load_clip(teacher, "cpu")
    text = {k: v.detach().contiguous() for k, v in clip.model.state_dict().items() if not k.startswith("visual.")}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    student = {f"model.{k}": v.detach().contiguous() for k, v in segmenter.model.state_dict().items()}
    student["text_embeddings"] = segmenter.text_embeddings.contiguous()
    atomic_write_bytes(out / "student.safetensors", save_bytes(student))
    atomic_write_bytes(out / "text.safetensors", save_bytes(text))
    from zeroseg3d.config import config_to_yaml

    manifest = {"format": FORMAT, "version": __version__, "config": config_to_yaml(segmenter.config),
                "vocabulary": segmenter.vocabulary, "embed_dim": segmenter.model.embed_dim,
                "synonyms": {name: list(words) for name, words in segmenter.synonyms().items()},
                "clip": {"name": name, "model_config": model_config,
                         "quick_gelu": uses_quick_gelu(teacher, name), "identity": clip.identity}}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2))
    return out


def load_bundle(path: str | Path, device: str = "cpu"):
    """A Segmenter from a bundle folder; new class names go through its own text tower."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from zeroseg3d.config import load_config_text
    from zeroseg3d.engine.checkpoint import check_model_state
    from zeroseg3d.engine.builder import load_student
    from zeroseg3d.engine.predict import Segmenter

    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        tensors = load_file(path / "student.safetensors")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: not a readable zeroseg3d bundle ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    manifest = manifest if isinstance(manifest, dict) else {}
    clip = manifest.get("clip")
    if (manifest.get("format") != FORMAT or not isinstance(clip, dict) or not isinstance(clip.get("name"), str)
            or not isinstance(clip.get("model_config"), dict)):
        raise CheckpointError(f"{path}: not a zeroseg3d bundle (format {FORMAT}, with the CLIP model's name and "
                              "config)")
    state = {"model": {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
             "config": manifest.get("config"), "vocabulary": manifest.get("vocabulary"),
             "text_embeddings": tensors.get("text_embeddings"), "embed_dim": manifest.get("embed_dim")}
    check_model_state(state, path)
    config = load_config_text(state["config"], f"{path / MANIFEST} (stored config)")
    config, model = load_student(state, path, config)
    synonyms = manifest.get("synonyms") or {}
    return Segmenter(model, config, state["vocabulary"], state["text_embeddings"], device,
                     clip.get("identity"), clip_loader=lambda: _text_tower(path, clip),
                     synonyms={str(k): tuple(map(str, v)) for k, v in synonyms.items()})


def _text_tower(path: Path, clip: dict):
    """The bundle's CLIP (text weights loaded, vision tower left at its initial values: it is
    never used) and tokenizer."""
    import open_clip
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from zeroseg3d.teacher.loading import LoadedCLIP

    name = _register(path, f"zs3d-bundle-{clip['name']}", clip["model_config"])
    model = open_clip.create_model(name, pretrained=None, force_quick_gelu=bool(clip.get("quick_gelu")))
    try:
        weights = load_file(path / "text.safetensors")
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except (OSError, SafetensorError, RuntimeError) as exc:   # missing, damaged, or of other shapes
        raise CheckpointError(f"{path / 'text.safetensors'}: not the text tower of the bundle's CLIP config "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    missing = [k for k in missing if not k.startswith("visual.")]
    if missing or unexpected:
        raise CheckpointError(f"{path / 'text.safetensors'}: does not fit the bundle's CLIP config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval()
    return LoadedCLIP(model, open_clip.get_tokenizer(name), tuple(open_clip.OPENAI_DATASET_MEAN),
                      tuple(open_clip.OPENAI_DATASET_STD), clip.get("identity"),
                      int(clip["model_config"].get("vision_cfg", {}).get("image_size", 224)))


def _register(path: Path, name: str, model_config: dict) -> str:
    """open_clip finds model configs in files: the bundle's, written to a temporary folder and
    registered (and checked) as the teacher's own are."""
    import tempfile

    from zeroseg3d.errors import ConfigError
    from zeroseg3d.teacher.loading import register_model_config

    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / f"{name}.json"
        file.write_text(json.dumps(model_config))
        try:
            return register_model_config(file)
        except ConfigError:
            raise CheckpointError(f"{path / MANIFEST}: its CLIP model config is not an open_clip model config "
                                  "(needs embed_dim, vision_cfg, text_cfg)") from None
