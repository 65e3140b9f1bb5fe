"""Errors meant for users: the CLI prints their message instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class ZeroSeg3DError(Exception):
    """Base class of every error caused by the user's input or environment."""


class DataError(ZeroSeg3DError, ValueError):
    """A data file is missing, truncated, misshapen or inconsistent. Names the file."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class ConfigError(ZeroSeg3DError, ValueError):
    """A configuration file or override is invalid."""
