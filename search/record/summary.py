"""What a range test found: ``LRRTSummary``, the one type the gate, the record, the views and
the benchmarks read (``search.method.lrrt.result.LRRTResult`` pairs it with the per-batch
curve it was read from).

Each field is a fact with its attr key and its reader written once, on the field, and its
meaning once, in ``MEANINGS``: the attrs are written from the fields (``to_attrs``, one fact
per ``lrrt_<field>`` key, so optuna-dashboard shows them as columns) and read back from them
(``from_attrs``), which also reads the nested ``lrrt`` summary of studies written before the
record had one owner. The smoothed curve a view draws is ``CurvePoints``; where a test
diverged, ``DivergencePoint``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, NamedTuple

from search.record.values import (
    Bounds,
    read_float,
    read_pair,
    read_positive_int,
    read_table,
    significant,
)

LRRT_PREFIX = "lrrt_"
"""Every fact of the summary is stored flat as ``lrrt_<field>`` (but ``num_classes``)."""
LRRT_SCORE = "lrrt_score"
"""The score's attr: its presence is what makes a summary exist."""
LRRT_GROUP = "lrrt_group"
NUM_CLASSES = "num_classes"
UNKNOWN_GROUP = "?|?"
"""The group of a summary read where none was stored."""

CURVE_POINTS = 200
"""Points of the smoothed LRRT curve a view draws (read from the trial's artifact, which
holds the full curve; studies written before this kept it in the ``lrrt_curve`` attr)."""
SHORT_CURVE_POINTS = 40
"""Points of the smoothed curve kept in the attrs until the trial's artifact holds it (or
for good when the search writes no artifacts)."""
CURVE_DIGITS = 4
"""Significant digits of the numbers of that short curve."""

DEFAULT_CHANCE_MARGIN = 0.1
"""The gate's default ``chance_margin`` (``GateRules`` takes it from here): what a trial
recorded without its evidence is read with."""


def chance_threshold(num_classes: int, margin: float = DEFAULT_CHANCE_MARGIN) -> float:
    """Accuracy a design must beat to count as learning: ``margin`` of the way from chance
    (1/num_classes) to perfect (the gate's rule; 10 classes -> 0.19)."""
    chance = 1.0 / num_classes
    return chance + margin * (1.0 - chance)


class DivergencePoint(NamedTuple):
    """The batch whose smoothed loss made the range test stop: the curve is cut before it,
    so views draw it as a marker. Stored as ``[step, lr, loss]``."""

    step: int
    lr: float
    loss: float | None
    """The smoothed loss there; None when it was not finite."""

    @classmethod
    def parse(cls, value: Any) -> DivergencePoint | None:
        if not isinstance(value, list | tuple) or len(value) != 3:
            return None
        step, lr = value[0], read_float(value[1])
        if not isinstance(step, int) or lr is None:
            return None
        return cls(step, lr, read_float(value[2]))

    @classmethod
    def from_text(cls, text: Any) -> DivergencePoint | None:
        """What an older summary's ``divergence`` text says ("smoothed loss 94.6 > 4x
        minimum at step 73 (lr 0.0826)"), for trials recorded before the point was."""
        if not isinstance(text, str):
            return None
        found = re.search(r"at step (\d+) \(lr ([-+.\deE]+)\)", text)
        if found is None or read_float(found.group(2)) is None:
            return None
        loss = re.match(r"smoothed loss ([-+.\deE]+) ", text)
        return cls(int(found.group(1)), float(found.group(2)),
                   read_float(loss.group(1)) if loss else None)


@dataclass(frozen=True)
class CurvePoints:
    """The smoothed LRRT curve, downsampled: accuracy and loss against LR."""

    lr: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    loss: tuple[float | None, ...]

    def to_attr(self) -> dict[str, list[float | None]]:
        return {"lr": list(self.lr), "accuracy": list(self.accuracy), "loss": list(self.loss)}

    def shortened(self, count: int = SHORT_CURVE_POINTS,
                  digits: int = CURVE_DIGITS) -> CurvePoints:
        """``count`` points at most, evenly spread (first and last kept), each number to
        ``digits`` significant digits: the copy a trial's attrs keep."""
        size = len(self.lr)
        if size > count:
            step = (size - 1) / (count - 1)
            index = [round(i * step) for i in range(count)]
        else:
            index = list(range(size))

        def column(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
            return tuple(significant(values[i], digits) if i < len(values) else None
                         for i in index)

        return CurvePoints(column(self.lr), column(self.accuracy), column(self.loss))

    @property
    def best_accuracy_lr(self) -> float | None:
        """LR of the highest accuracy (the first, on a tie); None for an empty curve."""
        known = [(y, -i, x) for i, (x, y) in enumerate(zip(self.lr, self.accuracy,
                                                            strict=False))
                 if x is not None and y is not None]
        return max(known)[2] if known else None

    @classmethod
    def from_attr(cls, value: Any) -> CurvePoints | None:
        if not isinstance(value, dict) or not value.get("lr"):
            return None

        def column(key: str) -> tuple[float | None, ...]:
            return tuple(read_float(v) for v in value.get(key) or [])

        return cls(column("lr"), column("accuracy"), column("loss"))


def _same(value: Any) -> Any:
    return value


def _flag(value: Any) -> bool:
    return bool(value)


def _limit(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def fact(read: Callable[[Any], Any], default: Any = MISSING, *, key: str | None = None) -> Any:
    """A field of the summary: how a stored value is ``read`` back, its default (what it is
    when absent from the attrs), and its attr ``key`` (``lrrt_<field>`` unless given). What
    it holds is in ``MEANINGS``."""
    return field(default=default, metadata={"read": read, "key": key})


@dataclass(frozen=True)
class LRRTSummary:
    """What a range test found, without the per-batch arrays: enough for the gate, the
    tables, the notes and the figures (``MEANINGS`` says what each field holds)."""

    score: float = fact(read_float, key=LRRT_SCORE)
    group: str = fact(str, key=LRRT_GROUP)
    num_classes: int = fact(read_positive_int, key=NUM_CLASSES)
    lr_range: Bounds | None = fact(read_pair, None)
    best_val_accuracy: float | None = fact(read_float, None)
    max_batch_accuracy: float | None = fact(read_float, None)
    max_epoch_accuracy: float | None = fact(read_float, None)
    diverged: bool = fact(_flag, False)
    divergence: str | None = fact(_same, None)
    completed_fraction: float = fact(lambda v: read_float(v) or 0.0, 1.0)
    bound_rule: str | None = fact(_same, None)
    bounds: Bounds | None = fact(read_pair, None)
    compare_rule: str | None = fact(_same, None)
    compare_bounds: Bounds | None = fact(read_pair, None)
    disagreement: float | None = fact(read_float, None)
    unstable: bool = fact(_flag, False)
    peak_memory_bytes: int = fact(lambda v: int(v or 0), 0)
    memory_kind: str = fact(lambda v: str(v or ""), "")
    seconds: float | None = fact(read_float, None)
    divergence_point: DivergencePoint | None = fact(DivergencePoint.parse, None)
    limit_found: bool | None = fact(_limit, None)
    best_accuracy_lr: float | None = fact(read_float, None)
    weight_change: float | None = fact(read_float, None)
    ramp_steps: int | None = fact(read_positive_int, None)
    extension: str | None = fact(_same, None)

    @property
    def has_bounds(self) -> bool:
        return self.bounds is not None

    def to_attrs(self) -> dict[str, Any]:
        """Flat attrs, one per fact, in writing order: the score comes last, because its
        presence is what makes a summary exist for readers (peers read RUNNING trials while
        their attrs are being written one by one)."""
        values: dict[str, Any] = {}
        for fact_field in (*_FACTS[1:], _FACTS[0]):
            value = getattr(self, fact_field.name)
            values[attr_key(fact_field)] = list(value) if isinstance(value, tuple) else value
        return values

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> LRRTSummary | None:
        """The summary a trial's attrs hold; None for a trial whose range test has not been
        recorded (no score, or no class count)."""
        stored = {**_legacy_lrrt(attrs),
                  **{f.name: attrs[attr_key(f)] for f in _FACTS if attr_key(f) in attrs}}
        values = {f.name: f.metadata["read"](stored[f.name]) for f in _FACTS
                  if f.name in stored}
        if values.get("score") is None or values.get("num_classes") is None:
            return None
        values.setdefault("group", UNKNOWN_GROUP)
        if values.get("best_val_accuracy") == 0.0 and values.get("max_epoch_accuracy") == 0.0:
            values["best_val_accuracy"] = values["max_epoch_accuracy"] = None  # older
            # versions wrote 0.0 when no epoch ended
        if values.get("divergence_point") is None and values.get("diverged"):
            values["divergence_point"] = DivergencePoint.from_text(values.get("divergence"))
        return cls(**values)


_FACTS = fields(LRRTSummary)

MEANINGS = read_table("""
score                 the range test's best smoothed training accuracy (only points whose
                      smoothing window is full): the value reported at step 0, the gate's
                      score
group                 its peer group `dataset|lr_range` (the thesis' groups)
num_classes           the dataset's classes: chance is 1/num_classes
lr_range              the tested LR range
best_val_accuracy     best validation accuracy at the test's epoch ends (null: no epoch
                      ended)
max_batch_accuracy    best batch accuracy during the test (the thesis' table column)
max_epoch_accuracy    best training accuracy at the test's epoch ends (the thesis' table
                      column)
diverged              whether the test blew up
divergence            where and how it blew up, in words
completed_fraction    share of the planned ramp that ran before the test stopped
bound_rule            the rule that chose the bounds
bounds                the bounds it chose (null: the curve gave none)
compare_rule          the second rule, for comparison
compare_bounds        the bounds the second rule chose
disagreement          how far the two rules' upper bounds differ (a factor >= 1)
unstable              whether that factor exceeds `lrrt.disagreement_factor`
peak_memory_bytes     peak memory of the test: CUDA peak allocation on a GPU, process RSS on
                      CPU
memory_kind           which of the two (`cuda_peak_allocated`, `process_rss`)
seconds               wall time of the test
divergence_point      `[step, lr, smoothed loss]` where the test diverged (the curve stops
                      before it)
limit_found           whether the ramp reached an LR where training stops improving (false:
                      the range may be too narrow)
best_accuracy_lr      the LR of the best smoothed accuracy
weight_change         how far the ramp moved the weights, relative to their norm
ramp_steps            batches the ramp ran (the weight movement is judged per hundred of
                      them)
extension             `up`: the ramp went on past its range's top, its loss not having
                      turned there; `down`: it was run again below its range, its bounds
                      having fallen under `lr_min` (`lr_range` is then the ramp measured);
                      null: within its range
""")
"""What each field of the summary holds."""


def attr_key(fact_field: Any) -> str:
    """The attr a summary's field is stored under."""
    return fact_field.metadata["key"] or LRRT_PREFIX + fact_field.name


def summary_attrs() -> dict[str, str]:
    """Each attr of the summary, with what it holds (the trial record's reference)."""
    return {attr_key(f): MEANINGS[f.name] for f in _FACTS}


_LEGACY_SUMMARY = "lrrt"
"""Before the record had one owner the summary was one nested attr (plus flat copies of a
few facts); studies written then are still read."""


def _legacy_lrrt(attrs: Mapping[str, Any]) -> dict[str, Any]:
    nested = attrs.get(_LEGACY_SUMMARY)
    if not isinstance(nested, dict):
        return {}
    values = {f.name: nested[f.name] for f in _FACTS[3:] if f.name in nested}
    if "best_smoothed_accuracy" in nested:
        values["score"] = nested["best_smoothed_accuracy"]
    if "lr_min" in nested and "lr_max" in nested:
        values["lr_range"] = [nested["lr_min"], nested["lr_max"]]
    if "lrrt_has_bounds" in attrs and not attrs["lrrt_has_bounds"]:
        values["bounds"] = None
    return values
