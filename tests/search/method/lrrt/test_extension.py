"""The range test sized from its trial, and extended past its range when the range does not
hold the answer (issue 20): real ramps on tiny data."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import optuna
import pytest
import torch

from data import ImageDataset
from search.config import LRRTSettings, parse_config
from search.method.lrrt.result import LR_FREE_RULE
from search.method.lrrt.run import BUDGET_SHARE, ramp_steps, run_lrrt
from search.method.optimizers import LR_FREE_BOUNDS, lr_free_ramp
from search.method.prepared_data import DataOnDevice
from search.method.suggest import sample_trial_config
from search.method.trial_config import TrialConfig
from tests.search.method.test_recipe import blocks_images


@pytest.fixture(scope="module")
def data() -> DataOnDevice:
    train_images, train_labels = blocks_images(256, 0)
    val_images, val_labels = blocks_images(64, 1)
    dataset = ImageDataset("blocks", train_images, train_labels, val_images, val_labels,
                           ("0", "1", "2", "3"))
    return DataOnDevice(dataset, torch.device("cpu"), eval_batch_size=64)


def design(lr_range: tuple[float, float], optimizer: str = "adam",
           **lrrt: object) -> TrialConfig:
    raw = {"study": "extension", "dataset": {"name": "fashion-mnist"},
           "space": {"blocks": [1], "filters": [4], "optimizer": [optimizer],
                     "lr_range": [list(lr_range)], "batch_size": [16], "fc_units": [16]},
           "model": {"l2": 0.0005},
           "lrrt": {"share": 0.25, "min_steps": 8, "sma_periods": 3, "ramp": "exponential",
                    "bound_rule": "sustained_limit", "compare_rule": None, **lrrt},
           "train": {"epochs": 4, "step_size_epochs": 1}}
    return sample_trial_config(optuna.trial.FixedTrial({}), parse_config(raw))


# --------------------------------------------------------------------------- sizing

@pytest.mark.parametrize(("settings", "steps"), [
    ({"steps": 50, "share": 0.1}, 50),        # steps wins
    ({"share": 0.1}, 40),                     # 10 % of 4 epochs x 100 batches
    ({"share": 0.01, "min_steps": 30}, 30),   # the floor
    ({"epochs": 1.5}, 150),                   # the thesis' length in epochs
])
def test_the_ramp_is_sized_by_steps_then_share_then_epochs(settings: dict, steps: int) -> None:
    assert ramp_steps(dataclasses.replace(LRRTSettings(), **settings), 4, 100) == steps


def test_a_floor_over_the_budget_is_warned_about_once(caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    settings = dataclasses.replace(LRRTSettings(), share=0.05, min_steps=30)
    with caplog.at_level(logging.WARNING, logger="cnnsearch.lrrt"):
        assert ramp_steps(settings, 2, 50) == 30  # 30 % of a 100-batch trial
        assert ramp_steps(settings, 2, 50) == 30
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "30%" in warned[0] and "lrrt.min_steps" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cnnsearch.lrrt"):
        ramp_steps(settings, 20, 50)  # 3 % of a 1,000-batch trial: within the budget
    assert not caplog.records and BUDGET_SHARE == 0.1


# --------------------------------------------------------------------------- extension

def _rate(lrs: list[float]) -> np.ndarray:
    return np.asarray(lrs[1:]) / np.asarray(lrs[:-1])


def test_a_range_far_below_the_limit_goes_on_upward_at_the_same_rate(
        data: DataOnDevice) -> None:
    base = run_lrrt(design((1e-6, 1e-5), extend_decades=0), data)
    extended = run_lrrt(design((1e-6, 1e-5), extend_decades=2), data)
    assert base.curve.extension is None and base.curve.lr_max == pytest.approx(1e-5)
    assert extended.curve.extension == "up"
    steps = len(base.curve.lrs)
    assert len(extended.curve.lrs) > steps
    assert extended.curve.lrs[:steps] == pytest.approx(base.curve.lrs)  # the same ramp...
    assert extended.curve.losses[:steps] == pytest.approx(base.curve.losses)  # ...and run
    assert _rate(extended.curve.lrs) == pytest.approx(_rate(base.curve.lrs)[0])
    assert extended.curve.lrs[-1] <= 1e-3 * 1.0001  # two decades at most
    assert extended.summary.bounds is not None
    assert extended.summary.bounds[1] > base.summary.bounds[1]


def test_a_range_that_diverges_at_its_first_rates_is_measured_again_below(
        data: DataOnDevice) -> None:
    result = run_lrrt(design((1.0, 10.0), optimizer="sgd", extend_decades=2), data)
    assert result.curve.extension == "down"
    assert result.curve.lr_max == pytest.approx(1.0)
    assert result.curve.lr_min == pytest.approx(0.01, rel=0.05)
    assert result.summary.bounds is not None and result.summary.bounds[1] < 1.0
    assert result.summary.lr_range == pytest.approx((result.curve.lr_min, 1.0))


def test_a_range_holding_its_limit_is_not_extended(data: DataOnDevice) -> None:
    plain = run_lrrt(design((1e-3, 10.0), optimizer="sgd", extend_decades=0), data)
    extended = run_lrrt(design((1e-3, 10.0), optimizer="sgd", extend_decades=1), data)
    assert plain.curve.limit_found
    assert extended.curve.extension is None
    assert extended.curve.losses == pytest.approx(plain.curve.losses)
    assert extended.summary.bounds == pytest.approx(plain.summary.bounds)


def test_linear_ramps_are_never_extended(data: DataOnDevice) -> None:
    result = run_lrrt(design((1e-6, 1e-5), ramp="linear", extend_decades=2), data)
    assert result.curve.extension is None and result.curve.lr_max == pytest.approx(1e-5)


# --------------------------------------------------------------------------- LR-free

@pytest.mark.parametrize("optimizer", sorted(LR_FREE_BOUNDS))
def test_an_lr_free_optimizer_ramps_to_its_own_lr_and_keeps_its_own_bounds(
        optimizer: str, data: DataOnDevice) -> None:
    config = design((1e-4, 1e-2), optimizer=optimizer, extend_decades=2)
    assert config.lr_range == lr_free_ramp(optimizer)  # the space's range does not apply
    result = run_lrrt(config, data)
    assert result.summary.bounds == LR_FREE_BOUNDS[optimizer]
    assert result.summary.bound_rule == LR_FREE_RULE and result.curve.extension is None
    assert math.isclose(result.curve.lr_max, LR_FREE_BOUNDS[optimizer][1])
