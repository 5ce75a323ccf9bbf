"""The frozen settings of a search, each key's default and checker written once, on its field.

A config key is a dataclass field whose metadata holds its ``check``er (or, for a section of
keys, the ``section`` class); a field without a default is a required key. ``config_keys``
walks the fields, so the schema the loader applies is always the dataclasses themselves.
Choices come from the registries (optimizers, samplers, after-LRRT pruners, bound rules,
datasets, families, activations, schedules, batch sampling strategies, objectives):
registering one makes it a valid value here.

Every number has a finite range (``nan`` and ``.inf`` are refused everywhere), every text is
one printable line of bounded length, every list of choices is bounded: a value that passes
here cannot crash the training later. A value quoted in a message is cut to ~80 characters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any

from data import DatasetError, validate_dataset_name
from data.augment import TRANSLATE_MODES
from data.registry import SPLITS, SplitError, split_plan
from models import (
    ACTIVATIONS,
    BACKBONES,
    BATCH_NORM_PLACES,
    FAMILIES,
    FC_UNITS_THESIS,
    VGG_STAGES,
    WEIGHTS,
)
from search.config.checkers import (
    EPOCHS,
    SEED,
    STUDY_NAME,
    TRIAL_COUNT,
    Checker,
    boolean,
    bounded_int,
    bounded_number,
    choice,
    fail,
    int_choice,
    optional,
    text_line,
)
from search.errors import UserError
from search.method.batch_selection import BATCH_SAMPLERS
from search.method.compiled_step import COMPILE_MODES
from search.method.lrrt.bounds import BOUND_RULES
from search.method.objective_metrics import OBJECTIVES, PRIMARY_OBJECTIVE
from search.method.optimizers import OPTIMIZERS
from search.method.optuna_samplers import REPEAT_POLICIES, SAMPLERS
from search.method.precision import PRECISIONS
from search.method.pruner import AFTER_LRRT_PRUNERS, GateRules
from search.method.schedules import SCHEDULES

# --------------------------------------------------------------------------- checkers
MAX_CHOICES = 1000
"""Most choices one space dimension may list."""
MAX_LR = 10.0
"""Largest learning rate (or LR bound) accepted: far above any that trains."""

_boolean, _choice, _optional, _int_choice = boolean, choice, optional, int_choice


def _batch_norm(key: str, value: Any) -> bool | str:
    """``none``, ``before`` or ``after`` the activation, or a boolean (the thesis' switch:
    ``true`` is ``before``; ``false`` leaves each family its own default)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in BATCH_NORM_PLACES:
        return value.lower()
    raise fail(key, "true, false or one of " + ", ".join(BATCH_NORM_PLACES), value)


def _milestones(key: str, value: Any) -> tuple[int, ...]:
    """Increasing epochs (1 ... 100000), at most 100 of them."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    checked = tuple(bounded_int(1, 100000)(f"{key}[{i}]", item) for i, item in enumerate(items))
    if not checked or len(checked) > 100 or list(checked) != sorted(set(checked)):
        raise fail(key, "a list of 1 to 100 increasing epochs", value)
    return checked


def _objectives(key: str, value: Any) -> tuple[str, ...]:
    """``[val_accuracy]``, or ``val_accuracy`` and one more objective to minimise."""
    items = value if isinstance(value, list) else [value]
    names = tuple(_choice(tuple(OBJECTIVES))(f"{key}[{i}]", item)
                  for i, item in enumerate(items))
    if not 1 <= len(names) <= 2 or names[0] != PRIMARY_OBJECTIVE or len(set(names)) != len(
            names):
        raise fail(key, f"[{PRIMARY_OBJECTIVE}] or [{PRIMARY_OBJECTIVE}, one of "
                   + ", ".join(n for n in OBJECTIVES if n != PRIMARY_OBJECTIVE) + "]", value)
    return names


_text = text_line(4096)
_name = STUDY_NAME


def _choices(inner: Checker) -> Checker:
    """A list of allowed values (a scalar is taken as a one-element list)."""

    def check(key: str, value: Any) -> tuple[Any, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or len(items) > MAX_CHOICES:
            raise fail(key, f"a non-empty list of at most {MAX_CHOICES} choices", value)
        checked = tuple(inner(f"{key}[{i}]", item) for i, item in enumerate(items))
        if len(set(checked)) != len(checked):
            raise fail(key, "a list without duplicates", value)
        return checked

    check.item = inner  # type: ignore[attr-defined]  # one choice's checker, for a design
    return check


def _lr_pair(key: str, value: Any) -> tuple[float, float]:
    """``[lr_min, lr_max]`` with 0 < lr_min < lr_max <= MAX_LR (a tuple is accepted too)."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise fail(key, "a pair [lr_min, lr_max]", value)
    low = bounded_number(0.0, MAX_LR, open_low=True)(f"{key}[0]", value[0])
    high = bounded_number(0.0, MAX_LR, open_low=True)(f"{key}[1]", value[1])
    if high <= low:
        raise fail(key, "lr_min < lr_max", value)
    return low, high


def _fc_units(key: str, value: Any) -> int | str:
    if value == FC_UNITS_THESIS:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65536:
        raise fail(key, f"'{FC_UNITS_THESIS}' or a positive integer (at most 65536)", value)
    return value


def _dataset_name(key: str, value: Any) -> str:
    name = _text(key, value)
    try:
        validate_dataset_name(name)
    except DatasetError as error:
        raise UserError(f"config key '{key}': {error}") from None
    return name


def _compile_mode(key: str, value: Any) -> str:
    """One of ``COMPILE_MODES``; YAML reads a bare ``off`` as false, so false is ``off``
    (and true, "compile", is ``default``)."""
    if isinstance(value, bool):
        return "default" if value else "off"
    return _choice(COMPILE_MODES)(key, value)


def _bound_rule(key: str, value: Any) -> str:
    return _choice(tuple(BOUND_RULES))(key, value)


# --------------------------------------------------------------------------- keys
def key(check: Checker, default: Any = MISSING, *, added: bool = False,
        identity: bool = True) -> Any:
    """A config key: ``check`` validates what the YAML gives; no ``default`` = required.

    ``added``: a key introduced after studies already existed. At its default it is left out
    of the study fingerprint, so a study made before the key existed still matches.
    ``identity=False``: a key that says how long or how a search runs (its budget, its seed),
    not what it searches: always left out of the fingerprint, so a study can be resumed
    with another value.
    """
    return field(default=default, metadata={"check": check, "added": added,
                                            "identity": identity})


def section(cls: type, *, required: bool = False, added: bool = False) -> Any:
    """A config section (a mapping of the keys of ``cls``); absent or null = ``cls()``.
    ``added``: as for ``key``, a section that studies made before it existed do not have."""
    return field(default=MISSING if required else cls(),
                 metadata={"section": cls, "added": added})


def config_keys(cls: type) -> dict[str, Field]:
    """The fields of ``cls`` that are config keys (or sections), in declaration order."""
    return {f.name: f for f in fields(cls) if "check" in f.metadata or "section" in f.metadata}


def is_required(setting: Field) -> bool:
    return setting.default is MISSING and setting.default_factory is MISSING


def check_one(cls: type, name: str, key: str, value: Any) -> Any:
    """``value`` checked (and normalised) by the checker of the key ``name`` of ``cls``, the
    message naming ``key``; for a space dimension, as one of its choices."""
    check = config_keys(cls)[name].metadata["check"]
    return getattr(check, "item", check)(key, value)


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class DatasetSettings:
    name: str = key(_dataset_name)
    data_dir: str | None = key(_optional(_text), None)
    """Where the files are (and are downloaded to); None: ``$CNNSEARCH_DATA_DIR``, else the
    per-user cache ``~/.cache/cnnsearch`` (``data.download.default_data_dir``)."""
    download: bool = key(_boolean, False, identity=False)
    train_size: int | None = key(_optional(bounded_int(1, 10**9)), None)
    val_size: int | None = key(_optional(bounded_int(1, 10**9)), None)
    image_size: int | None = key(_optional(bounded_int(4, 4096)), None)
    """Also bounded by memory: the resized images must fit (``data.memory_budget``)."""
    split: str = key(_choice(SPLITS), SPLITS[0], added=True)
    """``holdout``: the validation split (which selects designs) is carved from the training
    images, the official test split is kept apart for ``cnnsearch train`` and never seen by
    the search (folder datasets: train/validation/test 70/15/15). ``thesis``: the official
    test split validates, folders are split 80/20, no test split (``data.registry``)."""
    val_fraction: float | None = key(_optional(bounded_number(0.0, 1.0, open_low=True,
                                                       open_high=True)), None, added=True)
    """Validation share of each class: of the training images (default 0.1) or, for a
    folder dataset, of the folder (default 0.15 under holdout, 0.2 under thesis)."""
    test_fraction: float | None = key(_optional(bounded_number(0.0, 1.0, open_low=True,
                                                        open_high=True)), None, added=True)
    """Test share of each class of a folder dataset under holdout (default 0.15)."""

    def check_split(self) -> None:
        """``UserError`` naming the key when ``split``, ``val_fraction`` and
        ``test_fraction`` do not make sense together for this dataset."""
        try:
            split_plan(self.name, self.split, self.val_fraction, self.test_fraction)
        except SplitError as error:
            raise UserError(f"config key 'dataset.{error.key}': {error.text}") from None


@dataclass(frozen=True, kw_only=True)
class SpaceSettings:
    """Choices per dimension; a dimension with one choice is fixed, not sampled. A
    dimension that does not apply to a design is not sampled for it either (``depth`` only
    for vgg, ``momentum`` only for SGD: ``search.config.space``). Every dimension but
    ``optimizer`` and ``lr_range`` has a default: the thesis' block CNN and its training."""

    blocks: tuple[int, ...] = key(_choices(bounded_int(1, 8)), (2,))
    """thesis family: conv-conv-maxpool blocks."""
    filters: tuple[int, ...] = key(_choices(bounded_int(1, 1024)), (32,))
    """Base width: the thesis' F0, and the first stage of vgg and resnet18."""
    optimizer: tuple[str, ...] = key(_choices(_choice(tuple(OPTIMIZERS))))
    lr_range: tuple[tuple[float, float], ...] = key(_choices(_lr_pair))
    batch_size: tuple[int, ...] = key(_choices(bounded_int(1, 65536)), (128,))
    fc_units: tuple[int | str, ...] = key(_choices(_fc_units), (FC_UNITS_THESIS,))
    batch_norm: tuple[bool | str, ...] = key(_choices(_batch_norm), (False,))
    dropout: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0, open_high=True)), (0.0,))
    architecture: tuple[str, ...] = key(_choices(_choice(FAMILIES)), (FAMILIES[0],),
                                        added=True)
    """The family (``models.FAMILIES``): thesis, lenet5, vgg, resnet18, pretrained."""
    depth: tuple[int, ...] = key(_choices(_int_choice(tuple(VGG_STAGES))), (11,), added=True)
    """vgg only: 11, 13, 16 or 19."""
    backbone: tuple[str, ...] = key(_choices(_choice(tuple(BACKBONES))), ("resnet50",),
                                    added=True)
    """pretrained only."""
    weights: tuple[str, ...] = key(_choices(_choice(WEIGHTS)), ("imagenet",), added=True)
    """pretrained only: ``imagenet`` (downloaded once) or ``none``."""
    activation: tuple[str, ...] = key(_choices(_choice(tuple(ACTIVATIONS))), ("relu",),
                                      added=True)
    """Not for pretrained (its backbone keeps ReLU)."""
    l2: tuple[float, ...] | None = key(_optional(_choices(bounded_number(0.0, 1.0))), None,
                                       added=True)
    """Kernel L2 choices; null: ``model.l2``."""
    l1: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0)), (0.0,), added=True)
    momentum: tuple[float, ...] | None = key(
        _optional(_choices(bounded_number(0.0, 1.0, open_high=True))), None, added=True)
    """SGD only; null: ``train.sgd_momentum``."""
    beta1: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0, open_high=True)), (0.9,),
                                   added=True)
    """Adam and AdamW only."""
    beta2: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0, open_high=True)), (0.999,),
                                   added=True)
    """Adam and AdamW only."""
    weight_decay: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0)), (0.0,), added=True)
    """On every parameter, every optimizer (on top of the kernels' L2)."""
    normalise: tuple[bool, ...] = key(_choices(_boolean), (False,), added=True)
    """true: inputs standardised per channel with the training split's mean and std (seed
    001); false: the thesis' ``p/255 - 0.5``."""
    flip: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0)), (0.0,), added=True)
    """Augmentation: probability of a horizontal flip."""
    translate: tuple[int, ...] = key(_choices(bounded_int(0, 64)), (0,), added=True)
    """Augmentation: largest shift in pixels (pad and crop; ``train.translate_mode``)."""
    erase: tuple[float, ...] = key(_choices(bounded_number(0.0, 1.0)), (0.0,), added=True)
    """Augmentation: probability of random erasing."""
    schedule: tuple[str, ...] = key(_choices(_choice(tuple(SCHEDULES))), ("triangular2",),
                                    added=True)
    """triangular2 between the LRRT bounds; the others start at the upper bound
    (``train.decay``)."""
    sampling: tuple[str, ...] = key(_choices(_choice(tuple(BATCH_SAMPLERS))), ("uniform",),
                                    added=True)
    """Mini-batch sampling strategy (``train.sampling``)."""


@dataclass(frozen=True)
class ModelSettings:
    l2: float = key(bounded_number(0.0, 1.0), 0.01)


@dataclass(frozen=True)
class LRRTSettings:
    epochs: float = key(bounded_number(0.0, 1000.0, open_low=True), 8.0)
    """The thesis' ramp length in epochs, when neither ``steps`` nor ``share`` is set."""
    steps: int | None = key(_optional(bounded_int(2, 100000)), None, added=True)
    """Length of the ramp in batches; when set it replaces ``share`` and ``epochs``."""
    share: float | None = key(_optional(bounded_number(0.0, 1.0, open_low=True)), None,
                              added=True)
    """Length of the ramp as a share of the trial's training batches (``train.epochs``
    epochs at the design's batch size), at least ``min_steps``: the test costs the same
    share of every trial, on any dataset size (the shipped configs use it). Null:
    ``epochs``."""
    min_steps: int = key(bounded_int(2, 100000), 30, added=True)
    """The shortest ramp ``share`` may give: a few smoothing windows. A trial so short that
    this floor is over 10 % of it is warned about."""
    extend_decades: float = key(bounded_number(0.0, 6.0), 2.0, added=True)
    """How far an exponential ramp may go past its range, in decades, when the range does
    not hold the answer: upward while the loss has not turned up by ``lr_max``, downward
    (a second ramp below ``lr_min``) when its bounds fall under ``lr_min``. 0: never. The
    default, 2, was chosen on the development seeds (BENCHMARKS.md, "the method chosen")."""
    ramp: str = key(_choice(("linear", "exponential")), "linear", added=True)
    sma_periods: int = key(bounded_int(1, 10000), 20)
    bound_rule: str = key(_bound_rule, "thesis_first_epoch")
    compare_rule: str | None = key(_optional(_bound_rule), "smith_quarter")
    disagreement_factor: float = key(bounded_number(1.0, 1e6, open_low=True), 10.0)
    divergence_factor: float = key(bounded_number(1.0, 1e6, open_low=True), 4.0)


_GATE = GateRules()
"""The gate's defaults, written once on ``GateRules``."""


@dataclass(frozen=True)
class PrunerSettings:
    """The LRRT gate's keys (each ``GateRules``' field of that name: ``gate_rules``) and the
    standard pruner that judges the training epochs after it (``after_lrrt*``)."""

    chance_margin: float = key(bounded_number(0.0, 1.0, open_high=True), _GATE.chance_margin)
    percentile: float = key(bounded_number(0.0, 100.0), _GATE.percentile)
    peer_margin: float = key(bounded_number(0.0, 1.0), _GATE.peer_margin)
    warmup_trials: int = key(bounded_int(0, 10**6), _GATE.warmup_trials)
    prune_unstable: bool = key(_boolean, _GATE.prune_unstable)
    min_usable_fraction: float = key(bounded_number(0.0, 1.0, open_high=True),
                                     _GATE.min_usable_fraction)
    after_lrrt: str = key(_choice(tuple(AFTER_LRRT_PRUNERS)), "median")
    after_lrrt_startup_trials: int = key(bounded_int(0, 10**6), 3)
    after_lrrt_warmup_epochs: int = key(bounded_int(0, 100000), 1)
    peer_rejection: bool = key(_boolean, _GATE.peer_rejection, added=True)
    chance_needs_limit: bool = key(_boolean, _GATE.chance_needs_limit, added=True)
    weights_still: float = key(bounded_number(0.0, 1.0, open_high=True), _GATE.weights_still,
                               added=True)
    promotion_eta: int = key(bounded_int(0, 100), _GATE.promotion_eta, added=True)

    def gate_rules(self) -> GateRules:
        """The gate's settings as one frozen object, handed whole to the ``LRRTPruner``."""
        return GateRules(**{rule.name: getattr(self, rule.name) for rule in fields(GateRules)})


@dataclass(frozen=True)
class DecaySettings:
    """The fixed-LR schedules (``search.method.schedules``): ``exponential`` multiplies the
    LR by ``gamma`` each epoch, ``step`` every ``step_size`` epochs, ``multistep`` at each
    of ``milestones``."""

    gamma: float | None = key(_optional(bounded_number(0.0, 1.0, open_low=True)), None)
    """null: the schedule's own (exponential 0.95, step and multistep 0.1)."""
    step_size: int = key(bounded_int(1, 100000), 10)
    milestones: tuple[int, ...] = key(_milestones, (15, 30))


@dataclass(frozen=True)
class SamplingSettings:
    """The parameters of the batch sampling strategies (``search.method.batch_selection``)."""

    selection_pressure: float = key(bounded_number(1.0, 1e6), 100.0)
    """obs: how much likelier the top-ranked sample is than the last."""
    beta: int = key(bounded_int(1, 10**6), 10)
    """Batches between recomputations (adaptive's bin probabilities, obs' ranking)."""
    delta_p: float = key(bounded_number(0.0, 1.0, open_high=True), 0.9)
    delta_q: float = key(bounded_number(0.0, 1.0, open_high=True), 0.1)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = key(EPOCHS, 50)
    step_size_epochs: float = key(bounded_number(0.0, 100000.0, open_low=True), 4.0)
    sgd_momentum: float = key(bounded_number(0.0, 1.0, open_high=True), 0.0)
    eval_batch_size: int = key(bounded_int(1, 2**20), 1024)
    translate_mode: str = key(_choice(TRANSLATE_MODES), TRANSLATE_MODES[0], added=True)
    """What a translation brings in at the border: reflect or zero."""
    decay: DecaySettings = section(DecaySettings, added=True)
    sampling: SamplingSettings = section(SamplingSettings, added=True)
    precision: str = key(_choice(PRECISIONS), "auto", added=True)
    """The float precision of the range test and the training (``search.method.precision``):
    ``auto`` is bf16 autocast on a CUDA card that supports it, fp16 with a gradient scaler
    on one that does not, fp32 on the CPU; each trial records what it resolved to. ``auto``
    stays out of the fingerprint (a study made before the key had it); a fixed precision
    changes the results, so it is part of the study's identity."""
    compile: str = key(_compile_mode, "off", added=True, identity=False)
    """``torch.compile`` the model's forward and backward once per trial: off, default or
    reduce-overhead (CUDA graphs). A compile failure runs the trial eager, with a warning.
    How fast a search runs, not what it finds: not part of a study's identity."""


@dataclass(frozen=True)
class SearchConfig:
    study: str = key(_name)
    dataset: DatasetSettings = section(DatasetSettings, required=True)
    space: SpaceSettings = section(SpaceSettings, required=True)
    model: ModelSettings = section(ModelSettings)
    lrrt: LRRTSettings = section(LRRTSettings)
    pruner: PrunerSettings = section(PrunerSettings)
    train: TrainSettings = section(TrainSettings)
    seed: int = key(SEED, 0, identity=False)
    sampler: str = key(_choice(tuple(SAMPLERS)), "tpe")
    """tpe, random, or one that enumerates the space, each design once: grid (every
    combination of the sampled dimensions; ``search.method.optuna_samplers.MAX_GRID_POINTS``) or
    brute_force (only the combinations that apply)."""
    repeats: str = key(_choice(REPEAT_POLICIES), REPEAT_POLICIES[0], added=True,
                       identity=False)
    """A design sampled again (the same parameters as a finished trial): ``skip`` finishes
    it at once with that trial's result, no range test or training, and stops the search
    once every design has been tried; ``allow`` trains it again (``search.service.repeats``).
    How a search runs, not what it searches: a study may go on under the other policy."""
    n_trials: int | None = key(_optional(TRIAL_COUNT), None, identity=False)
    objectives: tuple[str, ...] = key(_objectives, (PRIMARY_OBJECTIVE,), added=True)
    """What a trial's value is: the validation accuracy (maximised), and optionally one
    more objective to minimise (``n_params`` or ``latency_ms``): a multi-objective search."""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The YAML document as read (not a key: no checker)."""

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def fingerprint(self) -> str:
        """Stable hash of the validated settings that make a study what it is (so
        ``blocks: 2`` and ``blocks: [2]`` agree); a study remembers the one it was made with.
        Keys that are not part of its identity (``n_trials``, ``seed``,
        ``dataset.download``) are left out."""
        return _hash(_fingerprinted(self, identity_only=True))

    def legacy_fingerprint(self) -> str:
        """The fingerprint as studies made before the budget and seed left it have stored:
        every key, those that are not part of a study's identity included."""
        return _hash(_fingerprinted(self, identity_only=False))


def identity_differences(stored: SearchConfig,
                         new: SearchConfig) -> list[tuple[str, Any, Any]]:
    """The keys of a study's identity whose values differ, as (dotted path, stored value,
    new value), in declaration order: what makes ``new`` another study than ``stored``."""
    return list(_differences(stored, new, ""))


def _differences(stored: Any, new: Any, prefix: str) -> Any:
    for name, setting in config_keys(type(stored)).items():
        if not setting.metadata.get("identity", True):
            continue
        before, after = getattr(stored, name), getattr(new, name)
        if "section" in setting.metadata:
            yield from _differences(before, after, f"{prefix}{name}.")
        elif before != after:
            yield f"{prefix}{name}", before, after


def _hash(settings: dict[str, Any]) -> str:
    payload = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def _left_out(settings: Any, setting: Field, identity_only: bool) -> bool:
    """Whether a key stays out of the fingerprint: added since studies existed and at its
    default, or (``identity_only``) not part of a study's identity."""
    return _new_default(settings, setting) or (
        identity_only and not setting.metadata.get("identity", True))


def _fingerprinted(settings: Any, identity_only: bool) -> dict[str, Any]:
    """The keys (and sections, recursively) of ``settings`` that a fingerprint hashes."""
    values = {f.name: getattr(settings, f.name) for f in fields(settings)
              if f.name != "raw" and not _left_out(settings, f, identity_only)}
    return {name: _fingerprinted(value, identity_only) if is_dataclass(value) else value
            for name, value in values.items()}


def _new_default(settings: Any, setting: Field) -> bool:
    """A key (or section) added since studies existed, and at its default."""
    return bool(setting.metadata.get("added")) and getattr(settings, setting.name) == \
        setting.default
