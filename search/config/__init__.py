"""The YAML search configuration: parsed once, validated key by key, frozen.

Every problem is reported as a ``UserError`` naming the key and what is allowed, so a typo
fails before any storage is touched or any model is trained. The settings dataclasses, each
key's default and checker on its field, are in ``settings``; reading YAML into them is in
``loading``.
"""

from __future__ import annotations

from search.config.loading import load_config, load_yaml, parse_config
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
    "parse_config",
]
