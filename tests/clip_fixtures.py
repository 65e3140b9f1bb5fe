"""Tiny randomly initialised open_clip models for teacher tests."""

import json
from pathlib import Path

TINY_VIT = {"embed_dim": 32,
            "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16,
                           "pool_type": "avg"},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TINY_VIT_TOK = {**TINY_VIT, "vision_cfg": {**TINY_VIT["vision_cfg"], "pool_type": "tok"}}
TINY_RN = {"embed_dim": 32,
           "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def write_model_config(folder: Path, name: str, config: dict) -> Path:
    path = Path(folder) / f"{name}.json"
    path.write_text(json.dumps(config))
    return path
