"""Precision of a trial's steps (``search.method.precision``): what ``auto`` resolves to, the
fp16 gradient scaler that skips a non-finite step (and only calls a persistent one
divergence), and bf16 against fp32 on real data: the same gate verdicts, losses within the
tolerances stated below."""

from __future__ import annotations

import math
from dataclasses import replace

import optuna
import pytest
import torch
from torch import nn

from data import ImageDataset
from search.config import parse_config
from search.method.compiled_step import StepForward
from search.method.lrrt.run import run_lrrt
from search.method.precision import NONFINITE_PATIENCE, Precision, resolve_precision
from search.method.prepared_data import DataOnDevice, load_data
from search.method.pruner import GateRules, lrrt_verdict
from search.method.recipe import training_run
from search.method.step import Execution, train_step
from search.method.suggest import sample_trial_config
from search.method.training import TrainingDiverged, train_epochs
from search.method.trial_config import TrialConfig
from tests.conftest import needs_fashion_mnist

CPU = torch.device("cpu")


def test_auto_is_fp32_on_the_cpu_and_a_fixed_precision_stays() -> None:
    assert resolve_precision("auto", CPU) == "fp32"
    for name in ("fp32", "bf16", "fp16"):
        assert resolve_precision(name, CPU) == name
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", CPU)
    assert Precision.for_device("auto", CPU).dtype is None
    assert Precision("bf16", CPU).dtype is torch.bfloat16
    assert not Precision("bf16", CPU).skips_nonfinite  # bf16 has fp32's range: no scaler
    fp16 = Precision("fp16", CPU)
    assert fp16.dtype is torch.float16 and fp16.skips_nonfinite
    assert fp16.state_dict()["scale"] == 2.0**16


def test_autocast_runs_the_forward_in_the_precision(tiny_model) -> None:
    model = tiny_model()
    images = torch.rand(4, 1, 8, 8)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with Precision(name, CPU).autocast():
            assert model(images).dtype == dtype


class Poisoned(nn.Module):
    """``inner``, but the logits of the calls numbered in ``bad`` (1, 2, ...) are NaN, as a
    forward pass that overflowed fp16 would make them."""

    def __init__(self, inner: nn.Module, bad: set[int] | range) -> None:
        super().__init__()
        self.inner = inner
        self.bad = bad
        self.calls = 0
        self.l1 = 0.0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = self.inner(images)
        return logits * math.nan if self.calls in self.bad else logits


def fit(model: nn.Module, train, val, precision: str, epochs: int = 2):
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, 1.0)
    execution = Execution(StepForward(model), Precision(precision, CPU))
    return train_epochs(model, optimizer, scheduler, train, val, epochs=epochs,
                        execution=execution), execution


def test_fp16_skips_a_few_nonfinite_steps_where_fp32_diverges(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=96, batch_size=8)  # 12 steps an epoch
    state, execution = fit(Poisoned(tiny_model(), {3, 4, 5}), train, val, "fp16")
    assert state.epochs_done == 2  # three skipped steps are the scaler's business
    assert all(math.isfinite(r.train_loss) for r in state.history)
    assert execution.precision.scaler.get_scale() < 2.0**16  # it saw them and backed off
    with pytest.raises(TrainingDiverged, match="non-finite training loss in epoch 1"):
        fit(Poisoned(tiny_model(), {3, 4, 5}), train, val, "fp32")


def test_a_skipped_fp16_step_leaves_the_weights_alone(tiny_model) -> None:
    model = Poisoned(tiny_model(), {1})
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, 1.0)
    before = [p.detach().clone() for p in model.parameters()]
    execution = Execution(StepForward(model), Precision("fp16", CPU))
    loss, _ = train_step(model, optimizer, scheduler, torch.rand(8, 1, 8, 8),
                         torch.arange(8) % 4, execution=execution)
    assert not math.isfinite(float(loss))
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_a_persistent_nonfinite_fp16_loss_is_divergence(tiny_data, tiny_model) -> None:
    """Skipped steps in a row count across epochs: 12-step epochs, poisoned from step 3."""
    train, val = tiny_data(n_train=96, batch_size=8)
    with pytest.raises(TrainingDiverged, match=f"{NONFINITE_PATIENCE} in a row") as raised:
        fit(Poisoned(tiny_model(), range(3, 1000)), train, val, "fp16", epochs=4)
    assert "by epoch 2" in str(raised.value)  # 10 in epoch 1, the 16th in epoch 2
    # one short of the patience is not divergence
    state, _ = fit(Poisoned(tiny_model(), range(3, 3 + NONFINITE_PATIENCE - 1)), train, val,
                   "fp16", epochs=3)
    assert state.epochs_done == 3


# --------------------------------------------------------------------------- bf16 vs fp32

LOSS_TOLERANCE = 0.2
"""bf16 against fp32, relative: the range test's smoothed loss at every step whose LR is at
most the fp32 test's upper bound (the rates the design trains at). Past them the ramp is
chaotic in any precision (1 and 2 threads already score the demo's first test 0.630 and
0.645): there only the verdict and the score are compared. Measured on torch 2.14's CPU
bf16 autocast: up to 10.7 % (B3FL8SGD) and 10.5 % (B2FL4Adam, whose ramp runs a decade past
its range), at the steps just under the upper bound where the loss turns; a precision that
breaks training (fp16 without its scaler) is off by far more."""
SCORE_TOLERANCE = 0.1
"""The range test's score (best smoothed accuracy, found near the top of the ramp), absolute.
Measured: at most 0.062."""
TRAIN_LOSS_TOLERANCE = 0.1
"""Each training epoch's loss, relative, or twice what another fp32 seed gives if more (two
epochs at the range test's bounds are not yet settled: B2FL16Adam's fp32 seeds differ)."""
ACCURACY_TOLERANCE = 0.05
"""Each training epoch's validation accuracy, absolute, or twice the seed-to-seed gap."""

DESIGNS = {
    # (blocks, filters, optimizer, lr_range): the demo's space, both optimizers and ranges
    "B2FL4Adam": (2, 4, "adam", [1.0e-4, 1.0e-2]),
    "B3FL8SGD": (3, 8, "sgd", [1.0e-2, 1.0e-1]),
    "B2FL16Adam": (2, 16, "adam", [1.0e-2, 1.0e-1]),
}


def demo_design(blocks: int, filters: int, optimizer: str, lr_range: list[float],
                precision: str) -> TrialConfig:
    """A design of the demo's space with the demo's range test, on fewer images."""
    raw = {"study": "precision", "seed": 0,
           "dataset": {"name": "fashion-mnist", "train_size": 1280, "val_size": 500},
           "space": {"blocks": [blocks], "filters": [filters], "optimizer": [optimizer],
                     "lr_range": [lr_range], "batch_size": [64], "fc_units": [32]},
           "model": {"l2": 0.0005},
           "lrrt": {"steps": 80, "ramp": "exponential", "sma_periods": 10,
                    "bound_rule": "sustained_limit", "compare_rule": "loss_valley"},
           "train": {"epochs": 2, "step_size_epochs": 1, "sgd_momentum": 0.9,
                     "precision": precision}}
    return sample_trial_config(optuna.trial.FixedTrial({}), parse_config(raw))


@pytest.fixture(scope="module")
def fashion() -> DataOnDevice:
    config = demo_design(2, 4, "adam", [1.0e-4, 1.0e-2], "fp32")
    return DataOnDevice(load_data(config.dataset, 0), CPU, eval_batch_size=500)


def smoothed(losses: list[float], periods: int) -> list[float]:
    return [sum(window) / len(window)
            for window in (losses[max(0, i - periods + 1):i + 1] for i in range(len(losses)))]


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


@needs_fashion_mnist
@pytest.mark.slow
@pytest.mark.parametrize("name", DESIGNS)
def test_bf16_gives_fp32_s_verdicts_and_losses_within_tolerance(name: str,
                                                                fashion: DataOnDevice) -> None:
    """Per design: the range test in both precisions (same seed, same batches), the gate's
    verdict on each, then two epochs of training between the fp32 test's bounds."""
    results = {}
    for precision in ("fp32", "bf16"):
        config = demo_design(*DESIGNS[name], precision)
        result = run_lrrt(config, fashion)
        summary = result.summary
        results[precision] = (config, result, summary, lrrt_verdict(summary, [], GateRules()))
    (config32, lrrt32, summary32, verdict32), (config16, lrrt16, summary16, verdict16) = (
        results["fp32"], results["bf16"])
    assert (verdict16 and verdict16.reason) == (verdict32 and verdict32.reason)
    assert summary16.score == pytest.approx(summary32.score, abs=SCORE_TOLERANCE)
    assert summary32.bounds is not None
    periods = config32.lrrt.sma_periods
    curve32, curve16 = (smoothed(r.curve.losses, periods) for r in (lrrt32, lrrt16))
    trained_at = [step for step, lr in enumerate(lrrt32.curve.lrs)
                  if lr <= summary32.bounds[1] and step < len(curve16)]
    assert trained_at, "the ramp never reached the rates the design trains at"
    worst = max(relative(curve16[step], curve32[step]) for step in trained_at)
    assert worst < LOSS_TOLERANCE, worst
    histories = {}
    # fp32 from another seed: the noise floor a change of precision is held to.
    runs = {"fp32": config32, "bf16": config16, "noise": replace(config32, seed=config32.seed + 1)}
    for label, config in runs.items():
        run = training_run(config, fashion, summary32.bounds)
        assert run.execution is not None
        assert run.execution.precision.name == ("fp32" if label == "noise" else label)
        histories[label] = run.fit(fashion.val, epochs=2).history
    for report32, report16, other in zip(histories["fp32"], histories["bf16"],
                                         histories["noise"], strict=True):
        loss_floor = 2 * relative(other.train_loss, report32.train_loss)
        assert (relative(report16.train_loss, report32.train_loss)
                < max(TRAIN_LOSS_TOLERANCE, loss_floor))
        accuracy_floor = 2 * abs(other.val_accuracy - report32.val_accuracy)
        assert report16.val_accuracy == pytest.approx(
            report32.val_accuracy, abs=max(ACCURACY_TOLERANCE, accuracy_floor))


def test_a_training_run_checkpoints_the_fp16_scale() -> None:
    config = demo_design(1, 2, "adam", [1.0e-3, 1.0e-2], "fp16")
    train_images = torch.randint(0, 255, (32, 1, 28, 28), dtype=torch.uint8)
    dataset = ImageDataset("tiny", train_images, torch.arange(32) % 10, train_images[:16],
                           torch.arange(16) % 10, tuple(str(k) for k in range(10)))
    data = DataOnDevice(dataset, CPU, eval_batch_size=16)
    run = training_run(config, data, (1e-3, 1e-2))
    scaler = run.execution.precision.scaler
    scaler.load_state_dict({**scaler.state_dict(), "scale": 1024.0})
    saved = run.state_dict()
    assert saved["scaler"]["scale"] == 1024.0
    fresh = training_run(config, data, (1e-3, 1e-2))
    fresh.load_state_dict(saved)
    assert fresh.execution.precision.scaler.get_scale() == 1024.0
    fresh.load_state_dict({**run.state_dict(), "scaler": None})  # from before: kept as is
    assert fresh.execution.precision.scaler.get_scale() == 1024.0


@pytest.mark.gpu
def test_auto_on_a_card_is_bf16_where_it_has_it_else_fp16_with_a_scaler() -> None:
    cuda = torch.device("cuda")
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    assert resolve_precision("auto", cuda) == expected
    precision = Precision.for_device("auto", cuda)
    assert precision.skips_nonfinite == (expected == "fp16")
    layer = nn.Linear(8, 4).to(cuda)
    with precision.autocast():
        assert layer(torch.rand(2, 8, device=cuda)).dtype == precision.dtype
