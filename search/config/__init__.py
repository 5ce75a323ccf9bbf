"""The YAML search configuration: parsed once, validated key by key, frozen.

Every problem is reported as a ``UserError`` naming the key and what is allowed, so a typo
fails before any storage is touched or any model is trained.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from data import DatasetError, validate_dataset_name
from models import FC_UNITS_THESIS
from search.errors import UserError
from search.method.lrrt.bounds import BOUND_RULES
from search.method.optimizers import OPTIMIZERS
from search.method.pruner import AFTER_LRRT_PRUNERS
from search.method.samplers import SAMPLERS


@dataclass(frozen=True)
class DatasetSettings:
    name: str
    data_dir: str | None = None
    download: bool = False
    train_size: int | None = None
    val_size: int | None = None
    image_size: int | None = None


@dataclass(frozen=True)
class SpaceSettings:
    """Choices per dimension; a dimension with one choice is fixed, not sampled."""

    blocks: tuple[int, ...]
    filters: tuple[int, ...]
    optimizer: tuple[str, ...]
    lr_range: tuple[tuple[float, float], ...]
    batch_size: tuple[int, ...] = (128,)
    fc_units: tuple[int | str, ...] = (FC_UNITS_THESIS,)
    batch_norm: tuple[bool, ...] = (False,)
    dropout: tuple[float, ...] = (0.0,)


@dataclass(frozen=True)
class ModelSettings:
    l2: float = 0.01


@dataclass(frozen=True)
class LRRTSettings:
    epochs: float = 8.0
    sma_periods: int = 20
    bound_rule: str = "thesis_first_epoch"
    compare_rule: str | None = "smith_quarter"
    disagreement_factor: float = 10.0
    divergence_factor: float = 4.0


@dataclass(frozen=True)
class PrunerSettings:
    chance_margin: float = 0.1
    percentile: float = 25.0
    peer_margin: float = 0.02
    warmup_trials: int = 4
    prune_unstable: bool = False
    min_usable_fraction: float = 0.05
    after_lrrt: str = "median"
    after_lrrt_startup_trials: int = 3
    after_lrrt_warmup_epochs: int = 1


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 50
    step_size_epochs: float = 4.0
    sgd_momentum: float = 0.0
    eval_batch_size: int = 1024


@dataclass(frozen=True)
class SearchConfig:
    study: str
    dataset: DatasetSettings
    space: SpaceSettings
    model: ModelSettings = ModelSettings()
    lrrt: LRRTSettings = LRRTSettings()
    pruner: PrunerSettings = PrunerSettings()
    train: TrainSettings = TrainSettings()
    seed: int = 0
    sampler: str = "tpe"
    n_trials: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def fingerprint(self) -> str:
        """Stable hash of the validated settings (so ``blocks: 2`` and ``blocks: [2]`` agree);
        a study remembers the one it was made with."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}
        payload = json.dumps(_settings_dict(settings), sort_keys=True, default=str).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def _settings_dict(values: dict[str, Any]) -> dict[str, Any]:
    return {key: asdict(value) if is_dataclass(value) else value
            for key, value in values.items()}


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


# --------------------------------------------------------------------------- checkers
Checker = Callable[[str, Any], Any]


def _fail(key: str, expected: str, value: Any) -> UserError:
    return UserError(f"config key '{key}': expected {expected}, got {value!r}")


def _int(low: int | None = None, high: int | None = None) -> Checker:
    def check(key: str, value: Any) -> int:
        bounds = _bounds_text(low, high)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, f"an integer{bounds}", value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise _fail(key, f"an integer{bounds}", value)
        return value

    return check


def _number(low: float | None = None, high: float | None = None, *, open_low: bool = False,
            open_high: bool = False) -> Checker:
    def check(key: str, value: Any) -> float:
        text = _bounds_text(low, high, open_low, open_high)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(key, f"a number{text}", value)
        below = low is not None and (value <= low if open_low else value < low)
        above = high is not None and (value >= high if open_high else value > high)
        if below or above or math.isnan(value):
            raise _fail(key, f"a number{text}", value)
        return float(value)

    return check


def _bounds_text(low: float | None, high: float | None, open_low: bool = False,
                 open_high: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if open_low else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if open_high else '<='} {high:g}")
    return " " + " and ".join(parts) if parts else ""


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "true or false", value)
    return value


def _choice(options: tuple[str, ...]) -> Checker:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in options:
            raise _fail(key, "one of " + ", ".join(options), value)
        return value.lower()

    return check


def _optional(inner: Checker) -> Checker:
    def check(key: str, value: Any) -> Any:
        return None if value is None else inner(key, value)

    return check


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, "a non-empty string", value)
    return value


def _choices(inner: Checker) -> Checker:
    """A list of allowed values (a scalar is taken as a one-element list)."""

    def check(key: str, value: Any) -> tuple[Any, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise _fail(key, "a non-empty list", value)
        checked = tuple(inner(f"{key}[{i}]", item) for i, item in enumerate(items))
        if len(set(checked)) != len(checked):
            raise _fail(key, "a list without duplicates", value)
        return checked

    return check


def _lr_pair(key: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise _fail(key, "a pair [lr_min, lr_max]", value)
    low = _number(0.0, open_low=True)(f"{key}[0]", value[0])
    high = _number(0.0, open_low=True)(f"{key}[1]", value[1])
    if high <= low:
        raise _fail(key, "lr_min < lr_max", value)
    return low, high


def _fc_units(key: str, value: Any) -> int | str:
    if value == FC_UNITS_THESIS:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(key, f"'{FC_UNITS_THESIS}' or a positive integer", value)
    return value


def _dataset_name(key: str, value: Any) -> str:
    name = _text(key, value)
    try:
        validate_dataset_name(name)
    except DatasetError as error:
        raise UserError(f"config key '{key}': {error}") from None
    return name


def _bound_rule(key: str, value: Any) -> str:
    return _choice(tuple(BOUND_RULES))(key, value)


Schema = dict[str, tuple[Checker, Any]]
_REQUIRED = object()

_DATASET: Schema = {
    "name": (_dataset_name, _REQUIRED),
    "data_dir": (_optional(_text), None),
    "download": (_boolean, False),
    "train_size": (_optional(_int(1)), None),
    "val_size": (_optional(_int(1)), None),
    "image_size": (_optional(_int(4, 4096)), None),
}
_SPACE: Schema = {
    "blocks": (_choices(_int(1, 8)), _REQUIRED),
    "filters": (_choices(_int(1, 1024)), _REQUIRED),
    "optimizer": (_choices(_choice(tuple(OPTIMIZERS))), _REQUIRED),
    "lr_range": (_choices(_lr_pair), _REQUIRED),
    "batch_size": (_choices(_int(1, 65536)), [128]),
    "fc_units": (_choices(_fc_units), [FC_UNITS_THESIS]),
    "batch_norm": (_choices(_boolean), [False]),
    "dropout": (_choices(_number(0.0, 1.0, open_high=True)), [0.0]),
}
_MODEL: Schema = {"l2": (_number(0.0), 0.01)}
_LRRT: Schema = {
    "epochs": (_number(0.0, 1000.0, open_low=True), 8.0),
    "sma_periods": (_int(1, 10000), 20),
    "bound_rule": (_bound_rule, "thesis_first_epoch"),
    "compare_rule": (_optional(_bound_rule), "smith_quarter"),
    "disagreement_factor": (_number(1.0, open_low=True), 10.0),
    "divergence_factor": (_number(1.0, open_low=True), 4.0),
}
_PRUNER: Schema = {
    "chance_margin": (_number(0.0, 1.0, open_high=True), 0.1),
    "percentile": (_number(0.0, 100.0), 25.0),
    "peer_margin": (_number(0.0, 1.0), 0.02),
    "warmup_trials": (_int(0), 4),
    "prune_unstable": (_boolean, False),
    "min_usable_fraction": (_number(0.0, 1.0, open_high=True), 0.05),
    "after_lrrt": (_choice(tuple(AFTER_LRRT_PRUNERS)), "median"),
    "after_lrrt_startup_trials": (_int(0), 3),
    "after_lrrt_warmup_epochs": (_int(0), 1),
}
_TRAIN: Schema = {
    "epochs": (_int(1, 100000), 50),
    "step_size_epochs": (_number(0.0, open_low=True), 4.0),
    "sgd_momentum": (_number(0.0, 1.0, open_high=True), 0.0),
    "eval_batch_size": (_int(1), 1024),
}
_TOP: Schema = {
    "study": (_text, _REQUIRED),
    "seed": (_int(0, 2**31 - 1), 0),
    "sampler": (_choice(tuple(SAMPLERS)), "tpe"),
    "n_trials": (_optional(_int(1)), None),
}
_SECTIONS: dict[str, tuple[Schema, type, bool]] = {
    "dataset": (_DATASET, DatasetSettings, True),
    "space": (_SPACE, SpaceSettings, True),
    "model": (_MODEL, ModelSettings, False),
    "lrrt": (_LRRT, LRRTSettings, False),
    "pruner": (_PRUNER, PrunerSettings, False),
    "train": (_TRAIN, TrainSettings, False),
}


def _apply(schema: Schema, raw: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UserError(f"config key '{prefix.rstrip('.') or '<top>'}': expected a mapping, "
                        f"got {raw!r}")
    allowed = set(schema)
    for key in raw:
        if key not in allowed:
            raise UserError(
                f"config key '{prefix}{key}' is unknown: allowed keys are "
                + ", ".join(sorted(allowed))
            )
    values = {}
    for key, (check, default) in schema.items():
        if key in raw:
            values[key] = check(prefix + key, raw[key])
        elif default is _REQUIRED:
            raise UserError(f"config key '{prefix}{key}' is required")
        else:
            values[key] = check(prefix + key, default) if default is not None else None
    return values


def parse_config(raw: Any) -> SearchConfig:
    """Validate a parsed YAML document into a ``SearchConfig``."""
    if not isinstance(raw, dict):
        raise UserError(f"config must be a mapping of sections, got {type(raw).__name__}")
    top_schema = {**_TOP, **{name: (lambda k, v: v, None) for name in _SECTIONS}}
    top = _apply(top_schema, raw, "")
    sections: dict[str, Any] = {}
    for name, (schema, cls, required) in _SECTIONS.items():
        if raw.get(name) is None:
            if required:
                raise UserError(f"config key '{name}' is required")
            sections[name] = cls()
            continue
        sections[name] = cls(**_apply(schema, raw[name], f"{name}."))
    config = SearchConfig(
        study=top["study"], seed=top["seed"], sampler=top["sampler"], n_trials=top["n_trials"],
        raw=raw, **sections,
    )
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
