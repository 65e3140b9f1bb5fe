"""zeroseg3d: zero-shot and open-vocabulary LiDAR semantic segmentation with CLIP."""

__version__ = "0.1.0"

from zeroseg3d.errors import ConfigError, DataError, ZeroSeg3DError  # noqa: E402

__all__ = ["__version__", "ZeroSeg3DError", "DataError", "ConfigError"]
