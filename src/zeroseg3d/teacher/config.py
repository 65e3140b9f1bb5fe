"""Typed settings of the teacher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

# Settings that change the teacher's outputs; the rest (batch size, device) do not.
OUTPUT_SETTINGS = ("readout", "value_residual", "short_side", "scales", "window", "window_stride",
                   "sliding", "templates", "prompt_denoise", "key_smoothing", "multi_camera")

@dataclass
class TemporalConfig:
    """Pseudo labels consolidated over neighbouring frames (teacher/temporal.py). On the world
    they triple the labelled unseen points at higher accuracy; alone they add +0.8 unseen mIoU
    (interval includes 0), with the object votes that build on them +7.2 (docs/results.md).
    Frames without a pose vote with their own labels only."""

    enabled: bool = True
    window: int = 5                      # frames on each side of the current one
    voxel_size: float = 0.2              # metres; votes meet in voxels of this size
    min_confidence: float = 0.0          # teacher labels below this confidence do not vote

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        if self.window < 0:
            raise ConfigError(f"teacher.temporal.window must be >= 0, not {self.window}")
        if not self.voxel_size > 0:
            raise ConfigError(f"teacher.temporal.voxel_size must be > 0, not {self.voxel_size}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"teacher.temporal.min_confidence must be in [0, 1], not {self.min_confidence}")


@dataclass
class TeacherConfig:
    model: str = "ViT-B-16"              # open_clip model name (or the name of model_config)
    pretrained: Optional[str] = None     # open_clip pretrained tag, e.g. openai, laion2b_s34b_b88k
    checkpoint: Optional[str] = None     # local weights file: .safetensors, or torch weights
    model_config: Optional[str] = None   # JSON model config of a custom architecture (demo teacher)
    random_init: bool = False            # random weights: only for tests and benchmarks
    # the activation the weights were trained with: None follows open_clip's record of the tag
    # (OpenAI's are QuickGELU) or of the local file (matched by its SHA-256)
    quick_gelu: Optional[bool] = None
    allow_unsafe_pickle: bool = False    # allow checkpoints that only load by unpickling
    download_timeout_s: float = 3.0      # how long to probe the hub before failing fast
    # value: each patch's value through the last block's output projection (MaskCLIP);
    # tokens: per-patch output tokens; window: global embeddings of sliding windows. Presets:
    # maskclip = value with the last block's residual and MLP kept (as MaskCLIP published it);
    # clearclip = value without them (ClearCLIP and NACLIP find the residual and the MLP the
    # main source of noise in dense CLIP features).
    readout: str = "value"
    value_residual: bool = True          # readout=value: keep the last block's residual and MLP
    short_side: int = 224                # images are resized so their short side is this
    scales: List[float] = field(default_factory=lambda: [1.0])  # multi-scale inference
    window: Optional[int] = None         # sliding window size in pixels (default: model image size)
    window_stride: Optional[int] = None  # default: half a window (readout=window: a quarter)
    sliding: bool = False                # value/tokens: slide windows instead of one resized pass
    templates: str = "driving"           # named prompt template set
    prompt_denoise: float = 0.0          # drop classes whose best confidence in an image is below
    key_smoothing: bool = False          # MaskCLIP key smoothing of the dense logits
    multi_camera: str = "confident"      # several cameras see a point: confident | nearest
    batch_size: int = 8
    precision: str = "auto"              # auto (bf16 on GPU, fp32 on CPU) | fp32 | fp16 | bf16
    device: str = "auto"
    cache_dir: str = "cache/teacher"
    temporal: TemporalConfig = field(default_factory=TemporalConfig)

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        presets = {"maskclip": True, "clearclip": False}
        if self.readout in presets:
            self.readout, self.value_residual = "value", presets[self.readout]
        checks = [
            (self.readout in ("value", "tokens", "window"),
             f"teacher.readout must be value, tokens, window, maskclip or clearclip, not {self.readout!r}"),
            (self.multi_camera in ("confident", "nearest"),
             f"teacher.multi_camera must be confident or nearest, not {self.multi_camera!r}"),
            (self.precision in ("auto", "fp32", "fp16", "bf16"),
             f"teacher.precision must be auto, fp32, fp16 or bf16, not {self.precision!r}"),
            (isinstance(self.short_side, int) and self.short_side > 0,
             f"teacher.short_side must be a positive integer, not {self.short_side!r}"),
            (len(self.scales) > 0 and all(s > 0 for s in self.scales),
             f"teacher.scales must be positive numbers, not {self.scales!r}"),
            (self.batch_size >= 1, f"teacher.batch_size must be >= 1, not {self.batch_size}"),
            (self.prompt_denoise >= 0, f"teacher.prompt_denoise must be >= 0, not {self.prompt_denoise}"),
            (self.window is None or self.window > 0, f"teacher.window must be > 0, not {self.window}"),
            (self.window_stride is None or self.window_stride > 0,
             f"teacher.window_stride must be > 0, not {self.window_stride}"),
            (self.download_timeout_s >= 0, f"teacher.download_timeout_s must be >= 0, not {self.download_timeout_s}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def output_settings(self) -> dict:
        """The settings that shape the teacher's outputs (its cache key, and what a quality
        figure was measured with)."""
        return {key: getattr(self, key) for key in OUTPUT_SETTINGS}
