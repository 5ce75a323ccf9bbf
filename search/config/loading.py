"""Reading a YAML search configuration into a ``SearchConfig``.

The keys, their checkers and their defaults are the fields of the settings dataclasses
(``search.config.settings``); this module walks them, applies the rules that span several
keys, and turns every problem into a one-line ``UserError``. The file itself is read by
``search.config.documents`` (bounded size, nesting and alias expansion; UTF-8; no duplicate
keys), and ``load_config`` also refuses a config whose data or largest design would not fit
in memory (``search.config.footprint``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml

from search.config.documents import (
    CONFIG_MAX_BYTES,
    CONFIG_MAX_NODES,
    load_yaml,
    read_yaml_file,
    short_repr,
)
from search.config.footprint import check_config_memory
from search.config.settings import (
    DatasetSettings,
    LRRTSettings,
    SearchConfig,
    SpaceSettings,
    config_keys,
    is_required,
)
from search.config.shapes import check_config_shape
from search.config.space import grid_points
from search.errors import UserError
from search.method.optuna_samplers import MAX_GRID_POINTS

_Section = TypeVar("_Section")


def _key_text(name: Any) -> str:
    """A key as a message shows it: itself when it is a short printable string."""
    if isinstance(name, str) and name.isprintable() and len(name) <= 60:
        return name
    return short_repr(name, 60)


def parse_section(cls: type[_Section], raw: Any, prefix: str) -> _Section:
    """One validated section (``TrainSettings`` ...) from the mapping ``raw``, with the rules
    that span its keys; ``prefix`` names it in messages (``'train.'``). For the sections of
    a design that is not a whole config: an export's entries."""
    section = cls(**_apply(cls, raw, prefix))
    if isinstance(section, LRRTSettings):
        _check_lrrt(section)
    if isinstance(section, DatasetSettings):
        section.check_split()
    return section


def _apply(cls: type, raw: Any, prefix: str) -> dict[str, Any]:
    """The checked values of the keys ``raw`` gives for ``cls`` (absent keys are left to the
    dataclass defaults). Plain keys are checked before sections, each in field order."""
    if not isinstance(raw, dict):
        raise UserError(f"config key '{prefix.rstrip('.') or '<top>'}': expected a mapping, "
                        f"got {short_repr(raw)}")
    keys = config_keys(cls)
    for name in raw:
        if name not in keys:
            raise UserError(
                f"config key '{prefix}{_key_text(name)}' is unknown: allowed keys are "
                + ", ".join(sorted(keys))
            )
    values: dict[str, Any] = {}
    for name, setting in keys.items():
        if "check" not in setting.metadata:
            continue
        if name in raw:
            values[name] = setting.metadata["check"](prefix + name, raw[name])
        elif is_required(setting):
            raise UserError(f"config key '{prefix}{name}' is required")
    for name, setting in keys.items():
        section_class = setting.metadata.get("section")
        if section_class is None:
            continue
        if raw.get(name) is None:  # absent or null: the section's defaults
            if is_required(setting):
                raise UserError(f"config key '{prefix}{name}' is required")
            continue
        values[name] = section_class(**_apply(section_class, raw[name], f"{prefix}{name}."))
    return values


def parse_config(raw: Any) -> SearchConfig:
    """Validate a parsed YAML document into a ``SearchConfig``."""
    if not isinstance(raw, dict):
        raise UserError(f"config must be a mapping of sections, got {type(raw).__name__}")
    config = SearchConfig(**_apply(SearchConfig, raw, ""), raw=raw)
    _check_cross_rules(config)
    return config


def _check_cross_rules(config: SearchConfig) -> None:
    config.dataset.check_split()
    _check_lrrt(config.lrrt)
    _check_sampler(config)


def _check_sampler(config: SearchConfig) -> None:
    """``grid`` holds every point of its grid in memory: refuse a space with more than
    ``MAX_GRID_POINTS``. Every dimension is a finite list of choices (no continuous range
    is accepted anywhere in the space), so that is the only bound the grid needs."""
    if config.sampler != "grid":
        return
    points = grid_points(config)
    if points > MAX_GRID_POINTS:
        raise UserError(f"config key 'sampler': grid enumerates every combination of the "
                        f"space's dimensions, at most {MAX_GRID_POINTS}, and this space has "
                        f"{points if points < 10**9 else format(points, '.3g')}; use "
                        "brute_force, tpe or random")


def _check_lrrt(lrrt: LRRTSettings) -> None:
    if lrrt.compare_rule == lrrt.bound_rule:
        raise UserError("config key 'lrrt.compare_rule': must differ from lrrt.bound_rule "
                        "(or be null to skip the comparison)")


def load_config(path: str | Path) -> SearchConfig:
    """Read and validate a YAML file, and check that what it asks for fits the images (when
    their shape is known) and the memory; every failure is a one-line ``UserError``."""
    raw = read_yaml_file(path, "config", max_bytes=CONFIG_MAX_BYTES, max_nodes=CONFIG_MAX_NODES)
    config = parse_config(raw)
    check_config_shape(config)
    check_config_memory(config)
    return config


def override_keys(config: SearchConfig, assignments: list[str]) -> SearchConfig:
    """``config`` with ``--set section.key=value`` applied (``train.precision=bf16``), each
    value read as YAML and checked as the config file's would be. The space's dimensions
    are the config's to list (``cnnsearch lrrt --set`` fixes one for a single test)."""
    if not assignments:
        return config
    raw = copy.deepcopy(dict(config.raw))
    for assignment in assignments:
        path, value = split_assignment(assignment)
        if path[0] == "space" or len(path) == 1 and path[0] in config_keys(SpaceSettings):
            raise UserError(f"--set {'.'.join(path)}: the search space is the config "
                            "file's; --set changes the other keys (train.precision=bf16)")
        section = raw
        for name in path[:-1]:
            inner = section.get(name)
            section[name] = dict(inner) if isinstance(inner, dict) else {}
            section = section[name]
        section[path[-1]] = value
    overridden = parse_config(raw)
    check_config_memory(overridden)
    return overridden


def split_assignment(assignment: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (``[section, key]``, the value read as YAML)."""
    key, sep, text = assignment.partition("=")
    path = [part.strip() for part in key.strip().split(".")]
    if not sep or not all(path):
        raise UserError(f"--set expects key=value, got {short_repr(assignment, 60)}")
    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        raise UserError(f"--set {key.strip()}: cannot parse value {short_repr(text, 60)}"
                        ) from None
    return path, value
