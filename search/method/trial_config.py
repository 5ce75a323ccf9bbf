"""One sampled design with everything needed to rebuild and retrain it, as plain data.

The builder, LRRT and trainer consume this; none of them imports Optuna. ``from_dict`` reads
one back (from an export a person may have edited) through the config's own checkers, so a
design that a config could not have produced is a one-line ``UserError``. Fields added since
the first exports (schedule, sampling, normalisation, augmentation, optimizer parameters)
have defaults that are the thesis' training, so an older design reads back as it trained.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any

from data.augment import Augmentation
from models import Architecture, ArchitectureError, design_name
from search.config import (
    DatasetSettings,
    LRRTSettings,
    ModelSettings,
    SearchConfig,
    SpaceSettings,
    TrainSettings,
    parse_section,
    short_repr,
    short_text,
)
from search.config.settings import check_one, config_keys
from search.config.space import lrrt_group
from search.errors import UserError
from search.method.batch_selection import BatchSamplingSettings
from search.method.optimizers import OptimizerParams
from search.method.schedules import ScheduleSettings

MAX_RUN_SEED = 2**63 - 1
"""Run seeds derive from the study seed (< 2**31) times 100,003 plus the trial number."""


@dataclass(frozen=True)
class TrialConfig:
    dataset: DatasetSettings
    architecture: Architecture
    optimizer: str
    lr_range: tuple[float, float]
    batch_size: int
    seed: int
    lrrt: LRRTSettings
    train: TrainSettings
    data_seed: int = 0
    """Seed of the dataset's subsets and splits: the study's, so a retrain sees the same
    train/validation images as the search did (``seed`` varies per trial and repeat)."""
    schedule: str = "triangular2"
    """The LR schedule (``search.method.schedules``); triangular2 cycles between the LRRT
    bounds, the others start at the upper bound."""
    sampling: str = "uniform"
    """The mini-batch sampling strategy (``search.method.batch_selection``)."""
    normalise: bool = False
    """Standardise the inputs per channel with the training split's statistics."""
    flip: float = 0.0
    translate: int = 0
    erase: float = 0.0
    """Augmentation: flip and erase probabilities, translation in pixels (``augmentation``)."""
    momentum: float | None = None
    """SGD's momentum; None: ``train.sgd_momentum`` (and None for other optimizers)."""
    beta1: float | None = None
    beta2: float | None = None
    """Adam's and AdamW's betas; None: 0.9 and 0.999."""
    weight_decay: float = 0.0

    @property
    def name(self) -> str:
        """``B2FL32Adam`` for the thesis family, ``ResNet18W64SGD``... (``design_name``)."""
        return design_name(self.architecture, self.optimizer)

    @property
    def lrrt_group(self) -> str:
        """The peers its range test is compared with: ``dataset|lr_range``."""
        return lrrt_group(self.dataset.name, self.lr_range)

    @property
    def optimizer_params(self) -> OptimizerParams:
        momentum = self.train.sgd_momentum if self.momentum is None else self.momentum
        default = OptimizerParams()
        betas = (default.betas[0] if self.beta1 is None else self.beta1,
                 default.betas[1] if self.beta2 is None else self.beta2)
        return OptimizerParams(momentum=momentum, betas=betas, weight_decay=self.weight_decay)

    @property
    def augmentation(self) -> Augmentation:
        """Everything off (the default) makes the training path the plain one."""
        return Augmentation(flip_p=self.flip, translate_pad=self.translate,
                            translate_mode=self.train.translate_mode, erase_p=self.erase)

    @property
    def schedule_settings(self) -> ScheduleSettings:
        decay = self.train.decay
        return ScheduleSettings(self.schedule, step_size_epochs=self.train.step_size_epochs,
                                gamma=decay.gamma, step_size=decay.step_size,
                                milestones=decay.milestones)

    @property
    def sampling_settings(self) -> BatchSamplingSettings:
        return BatchSamplingSettings(self.sampling, **asdict(self.train.sampling))

    def with_seed(self, seed: int) -> TrialConfig:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["lr_range"] = list(self.lr_range)
        return values

    @classmethod
    def from_dict(cls, values: Any) -> TrialConfig:
        """The design ``to_dict`` wrote, each value checked as a config's would be (sections
        by their settings, design fields by the space's checkers); ``UserError`` otherwise."""
        if not isinstance(values, dict):
            raise UserError(f"config: expected a mapping, got {short_repr(values)}")
        allowed = [f.name for f in fields(cls)]
        for name in values:
            if name not in allowed:
                raise UserError(f"config key {short_repr(name, 40)} is unknown: allowed keys "
                                f"are {', '.join(sorted(allowed))}")
        required = [f.name for f in fields(cls) if f.default is MISSING]
        for name in required:
            if name not in values:
                raise UserError(f"config key '{name}' is required")
        low, high = _space_value("lr_range", values["lr_range"])
        optional = {name: _optional_value(name, values[name]) for name in _OPTIONAL
                    if name in values}
        return cls(
            dataset=parse_section(DatasetSettings, values["dataset"], "dataset."),
            architecture=_architecture(values["architecture"]),
            optimizer=_space_value("optimizer", values["optimizer"]),
            lr_range=(low, high),
            batch_size=_space_value("batch_size", values["batch_size"]),
            seed=_run_seed("seed", values["seed"]),
            lrrt=parse_section(LRRTSettings, values["lrrt"], "lrrt."),
            train=parse_section(TrainSettings, values["train"], "train."),
            data_seed=check_one(SearchConfig, "seed", "data_seed", values.get("data_seed", 0)),
            **optional,
        )


_OPTIONAL = ("schedule", "sampling", "normalise", "flip", "translate", "erase", "momentum",
             "beta1", "beta2", "weight_decay")
"""The fields added since the first exports: each one a space dimension of that name."""


def _optional_value(name: str, value: Any) -> Any:
    """One of the ``_OPTIONAL`` fields, checked as a choice of its dimension (None, where
    the field allows it, is the default)."""
    if value is None and name in ("momentum", "beta1", "beta2"):
        return None
    return _space_value(name, value)


def _space_value(name: str, value: Any, key: str | None = None) -> Any:
    """One value of the space dimension ``name``, checked as one of its choices."""
    return check_one(SpaceSettings, name, key or name, value)


def _run_seed(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RUN_SEED:
        raise UserError(f"config key '{key}': expected an integer >= 0 and <= {MAX_RUN_SEED}, "
                        f"got {short_repr(value)}")
    return value


def _architecture(values: Any) -> Architecture:
    """An ``Architecture`` whose fields that are space dimensions (``blocks``, ``filters``...)
    or model settings (``l2``) pass those checkers, the others the class' own checks. A string
    the space refuses is left to the class too: a design may spell a dimension its own way
    (``batch_norm: before`` for the space's ``true``), and the class refuses what it does not
    know. An unset field (None: one the family does not use) is the class' to judge too."""
    if not isinstance(values, dict):
        raise UserError(f"config key 'architecture': expected a mapping, got "
                        f"{short_repr(values)}")
    allowed = [f.name for f in fields(Architecture)]
    space, model = config_keys(SpaceSettings), config_keys(ModelSettings)
    checked = {}
    for name, value in values.items():
        if name not in allowed:
            raise UserError(f"config key 'architecture.{short_text(str(name), 40)}' is unknown:"
                            f" allowed keys are {', '.join(sorted(allowed))}")
        key = f"architecture.{name}"
        checked[name] = value
        if value is None:  # a field the family leaves unset: the class decides
            continue
        try:
            if name in space:
                checked[name] = _space_value(name, value, key)
            elif name in model:
                checked[name] = check_one(ModelSettings, name, key, value)
        except UserError:
            if not isinstance(value, str):
                raise
    try:
        return Architecture.from_dict(checked)
    except (ArchitectureError, TypeError, ValueError) as error:
        raise UserError(f"config key 'architecture': {short_text(str(error))}") from None
