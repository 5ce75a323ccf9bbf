"""Real range tests on tiny data: the ramp, learning, divergence."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from search.method.lrrt.curve import WEIGHTS_STILL, find_divergence, linear_lr
from search.method.lrrt.result import summarise
from search.method.lrrt.run import run_range_test
from search.method.optimizers import make_optimizer

# --------------------------------------------------------------------------- real runs


def test_range_test_ramps_linearly_over_fractional_epochs(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=80, batch_size=16)  # 5 batches an epoch
    model = tiny_model()
    optimizer = make_optimizer(model, "adam", 1e-4)
    before = [p.detach().clone() for p in model.parameters()]
    curve, memory = run_range_test(
        model,
        optimizer,
        train,
        val,
        lr_range=(1e-4, 1e-2),
        epochs=1.5,
        sma_periods=3,
        divergence_factor=4.0,
    )
    assert curve.steps_per_epoch == 5
    assert curve.total_steps == 8  # ceil(1.5 * 5)
    assert not curve.diverged and curve.divergence is None
    assert len(curve.lrs) == len(curve.losses) == len(curve.accuracies) == 8
    assert curve.lrs[0] == pytest.approx(1e-4, rel=1e-9)
    assert curve.lrs[-1] == pytest.approx(1e-2, rel=1e-9)
    assert curve.lrs == pytest.approx([linear_lr(s, 8, 1e-4, 1e-2) for s in range(8)], rel=1e-9)
    assert all(math.isfinite(x) for x in curve.losses)
    assert all(0.0 <= a <= 1.0 for a in curve.accuracies)
    assert curve.completed_fraction == 1.0
    # one entry per (partial) epoch, each with validation metrics
    assert [e["epoch"] for e in curve.epochs] == [1, 2]
    assert [e["step"] for e in curve.epochs] == [5, 8]
    for entry, (start, stop) in zip(curve.epochs, [(0, 5), (5, 8)], strict=True):
        assert entry["lr"] == curve.lrs[stop - 1]
        assert entry["loss"] == pytest.approx(np.mean(curve.losses[start:stop]))
        assert entry["accuracy"] == pytest.approx(np.mean(curve.accuracies[start:stop]))
        assert math.isfinite(entry["val_loss"]) and entry["val_loss"] > 0
        assert 0.0 <= entry["val_accuracy"] <= 1.0
    # the model was trained in place
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert memory.kind == "process_rss" and memory.peak() > 0


def test_range_test_longer_than_the_check_chunk_keeps_every_step(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=96, batch_size=8)  # 12 batches an epoch
    model = tiny_model(seed=1)
    optimizer = make_optimizer(model, "sgd", 1e-3)
    curve, _ = run_range_test(
        model,
        optimizer,
        train,
        val,
        lr_range=(1e-3, 1e-1),
        epochs=3,
        sma_periods=5,
        divergence_factor=4.0,
    )
    assert curve.total_steps == 36
    assert len(curve.lrs) == len(curve.losses) == 36
    assert np.diff(curve.lrs) == pytest.approx([(1e-1 - 1e-3) / 35] * 35, rel=1e-6)
    assert [e["step"] for e in curve.epochs] == [12, 24, 36]


def test_range_test_learns_the_tiny_task(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=128, batch_size=16)
    model = tiny_model(filters=4)
    optimizer = make_optimizer(model, "adam", 1e-3)
    curve, memory = run_range_test(
        model,
        optimizer,
        train,
        val,
        lr_range=(1e-3, 2e-2),
        epochs=4,
        sma_periods=4,
        divergence_factor=4.0,
    )
    assert not curve.diverged
    assert curve.epochs[-1]["val_accuracy"] >= 0.9
    result = summarise(
        curve,
        seconds=0.5,
        peak_memory_bytes=memory.peak(),
        bound_rule="thesis_first_epoch",
        compare_rule="smith_quarter",
        disagreement_factor=10.0,
    )
    assert result.summary.score > 0.5
    assert result.summary.best_val_accuracy == pytest.approx(
        max(e["val_accuracy"] for e in curve.epochs), abs=1e-6)
    bounds = result.summary.bounds
    assert bounds is not None and bounds[0] == pytest.approx(1e-3)


def test_the_range_test_measures_how_far_it_moved_the_weights(tiny_data, tiny_model) -> None:
    """The gate tells a ramp too small to train anything from a slow starter by this."""
    train, val = tiny_data(n_train=128, batch_size=16)
    moved = {}
    for lr_range in ((1e-9, 2e-9), (1e-3, 2e-2)):
        torch.manual_seed(0)
        model = tiny_model(filters=4)
        curve, _ = run_range_test(model, make_optimizer(model, "sgd", lr_range[0]), train, val,
                                  lr_range=lr_range, epochs=2, sma_periods=4,
                                  divergence_factor=4.0)
        moved[lr_range] = curve.weight_change
    assert moved[(1e-9, 2e-9)] < WEIGHTS_STILL < moved[(1e-3, 2e-2)]


def test_a_huge_lr_range_diverges_and_cuts_the_curve(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=96, batch_size=8)
    model = tiny_model()
    optimizer = make_optimizer(model, "sgd", 1.0)
    curve, _ = run_range_test(
        model,
        optimizer,
        train,
        val,
        lr_range=(1.0, 1e4),
        epochs=4,
        sma_periods=2,
        divergence_factor=4.0,
    )
    assert curve.diverged
    assert curve.divergence is not None
    match = re.search(r"at step (\d+)", curve.divergence)
    assert match is not None
    cut = int(match.group(1))
    assert 0 < cut < curve.total_steps
    assert len(curve.lrs) == len(curve.losses) == len(curve.accuracies) == cut
    assert all(math.isfinite(x) for x in curve.losses)
    assert find_divergence(curve.losses, curve.sma_periods, 4.0) is None
    assert curve.completed_fraction == cut / curve.total_steps
    # no validation entry for an epoch that diverged
    assert all(entry["step"] <= cut for entry in curve.epochs)


def test_an_exponential_ramp_counted_in_steps(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=96, batch_size=16)  # 6 batches an epoch
    model = tiny_model()
    optimizer = make_optimizer(model, "sgd", 1e-4)
    curve, _ = run_range_test(model, optimizer, train, val, lr_range=(1e-4, 1e-1), epochs=8,
                              sma_periods=2, divergence_factor=1e9, steps=16,
                              ramp="exponential")
    assert curve.total_steps == 16 and len(curve.lrs) == 16  # steps win over epochs
    expected = [curve.lr_at_step(s) for s in range(16)]
    assert curve.lrs == pytest.approx(expected, rel=1e-6)
    ratios = np.asarray(curve.lrs[1:]) / np.asarray(curve.lrs[:-1])
    assert ratios == pytest.approx([ratios[0]] * 15, rel=1e-6)  # geometric
    assert [e["step"] for e in curve.epochs] == [6, 12, 16]
