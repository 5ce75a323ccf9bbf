"""Reading a YAML search configuration into a ``SearchConfig``.

The keys, their checkers and their defaults are the fields of the settings dataclasses
(``search.config.settings``); this module walks them, applies the rules that span several
keys, and turns every problem into a one-line ``UserError``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from search.config.settings import SearchConfig, config_keys, is_required
from search.errors import UserError


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``): LRs are
    written that way by everyone."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.VERBOSE),
    list("-+0123456789."),
)


def load_yaml(text: str) -> object:
    return yaml.load(text, Loader=YamlLoader)  # a SafeLoader subclass: safe


def _apply(cls: type, raw: Any, prefix: str) -> dict[str, Any]:
    """The checked values of the keys ``raw`` gives for ``cls`` (absent keys are left to the
    dataclass defaults). Plain keys are checked before sections, each in field order."""
    if not isinstance(raw, dict):
        raise UserError(f"config key '{prefix.rstrip('.') or '<top>'}': expected a mapping, "
                        f"got {raw!r}")
    keys = config_keys(cls)
    for name in raw:
        if name not in keys:
            raise UserError(
                f"config key '{prefix}{name}' is unknown: allowed keys are "
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
    lrrt = config.lrrt
    if lrrt.compare_rule == lrrt.bound_rule:
        raise UserError("config key 'lrrt.compare_rule': must differ from lrrt.bound_rule "
                        "(or be null to skip the comparison)")


def load_config(path: str | Path) -> SearchConfig:
    """Read and validate a YAML file; every failure is a one-line ``UserError``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror or error}") from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise UserError(f"malformed YAML in {path}{where}: {problem}") from None
    return parse_config(raw)
