"""The YAML search configuration: parsed once, validated key by key, frozen.

Every problem is reported as a ``UserError`` naming the key and what is allowed, so a typo
fails before any storage is touched or any model is trained. The settings dataclasses, each
key's default and checker on its field, are in ``settings``; reading YAML into them is in
``loading``, under the limits of ``documents`` (the same reader reads exports); the memory a
config implies is estimated in ``footprint``.
"""

from __future__ import annotations

from search.config.documents import load_yaml, read_yaml_file, short_repr, short_text
from search.config.loading import load_config, override_keys, parse_config, parse_section
from search.config.settings import (
    DatasetSettings,
    LRRTSettings,
    ModelSettings,
    PrunerSettings,
    SearchConfig,
    SpaceSettings,
    TrainSettings,
)

__all__ = [
    "DatasetSettings",
    "LRRTSettings",
    "ModelSettings",
    "PrunerSettings",
    "SearchConfig",
    "SpaceSettings",
    "TrainSettings",
    "load_config",
    "load_yaml",
    "override_keys",
    "parse_config",
    "parse_section",
    "read_yaml_file",
    "short_repr",
    "short_text",
]
