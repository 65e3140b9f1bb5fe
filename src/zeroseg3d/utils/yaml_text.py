"""YAML as the project reads it: UTF-8, safe types only, and no aliases.

Config files, vocabularies and sidecars never need anchors and aliases (``&a`` / ``*a``), and a
file of nested aliases expands exponentially (a "billion laughs" file hung the config loader),
so an alias is refused as soon as the parser meets it."""

from __future__ import annotations

from pathlib import Path

import yaml


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here", event.start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str):
    """The data of YAML text (raises yaml.YAMLError on bad YAML or an alias)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def read_text_utf8(path: str | Path, error) -> str:
    """A file's text; ``error(message)`` is raised for bytes that are not UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem
