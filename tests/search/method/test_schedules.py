"""LR schedules by name: triangular2 per batch, the fixed-LR baselines per epoch."""

from __future__ import annotations

import pytest
import torch

from search.method import training
from search.method.optimizers import make_optimizer
from search.method.schedules import (
    PER_BATCH,
    PER_EPOCH,
    SCHEDULES,
    EpochFactor,
    ScheduleSettings,
    make_schedule,
    make_triangular2,
)


def trace(optimizer: torch.optim.Optimizer, scheduler, steps: int) -> list[float]:
    """The first group's LR before each of ``steps`` batches (one scheduler step a batch)."""
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def torch_per_epoch(name: str, optimizer: torch.optim.Optimizer, gamma: float,
                    step_size: int, milestones: tuple[int, ...]):
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def test_the_registry_says_how_often_each_schedule_changes() -> None:
    assert set(SCHEDULES) == {"triangular2", "exponential", "step", "multistep", "constant"}
    assert ScheduleSettings().name == "triangular2"
    assert ScheduleSettings().stepping == PER_BATCH
    for name in ("exponential", "step", "multistep", "constant"):
        assert ScheduleSettings(name=name).stepping == PER_EPOCH
    assert training.make_triangular2 is make_triangular2  # still importable from training


@pytest.mark.parametrize("name", ["exponential", "step", "multistep", "constant"])
def test_per_epoch_schedules_match_torch_stepped_once_an_epoch(tiny_model, name) -> None:
    steps_per_epoch, epochs = 3, 12
    settings = ScheduleSettings(name=name, gamma=0.7, step_size=4, milestones=(2, 5, 9))
    ours = make_optimizer(tiny_model(), "sgd", 1.0)
    scheduler = make_schedule(ours, settings, 0.05, steps_per_epoch)
    per_batch = trace(ours, scheduler, steps_per_epoch * epochs)

    reference = make_optimizer(tiny_model(), "sgd", 0.05)
    theirs = torch_per_epoch(name, reference, 0.7, 4, (2, 5, 9))
    per_epoch = trace(reference, theirs, epochs)
    assert per_batch == pytest.approx([lr for lr in per_epoch for _ in range(steps_per_epoch)],
                                      rel=1e-9)
    assert ours.param_groups[1]["lr"] == ours.param_groups[0]["lr"]  # every group moves
    assert len(set(per_batch)) == {"exponential": 12, "step": 3, "multistep": 4,
                                   "constant": 1}[name]


def test_fixed_lr_schedules_start_at_the_upper_bound_when_given_bounds(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "adam", 1e-3)
    scheduler = make_schedule(optimizer, ScheduleSettings(name="exponential"), (1e-3, 1e-2), 2)
    lrs = trace(optimizer, scheduler, 6)
    assert lrs == pytest.approx([1e-2, 1e-2, 9.5e-3, 9.5e-3, 1e-2 * 0.95**2, 1e-2 * 0.95**2])
    assert all(g["lr"] == pytest.approx(1e-2 * 0.95**3) for g in optimizer.param_groups)


def test_default_gammas_belong_to_each_schedule() -> None:
    assert ScheduleSettings(name="exponential").decay == 0.95
    assert ScheduleSettings(name="step").decay == 0.1
    assert ScheduleSettings(name="multistep", gamma=0.5).decay == 0.5
    assert ScheduleSettings(name="constant").decay == 1.0


def test_triangular2_is_the_cyclic_lr_between_the_bounds(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "adam", 1e-3)
    scheduler = make_schedule(optimizer, ScheduleSettings(step_size_epochs=1), (1e-3, 1e-2), 4)
    assert isinstance(scheduler, torch.optim.lr_scheduler.CyclicLR)
    lrs = trace(optimizer, scheduler, 9)
    assert lrs[0] == pytest.approx(1e-3) and lrs[4] == pytest.approx(1e-2)
    assert lrs[8] == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="bounds"):
        make_schedule(make_optimizer(tiny_model(), "adam", 1e-3), ScheduleSettings(), 1e-3, 4)


def test_a_per_epoch_schedule_resumes_from_its_state_dict(tiny_model) -> None:
    settings = ScheduleSettings(name="step", gamma=0.5, step_size=2)
    optimizer = make_optimizer(tiny_model(), "sgd", 0.1)
    scheduler = make_schedule(optimizer, settings, 0.1, 3)
    straight = trace(optimizer, scheduler, 20)

    optimizer = make_optimizer(tiny_model(), "sgd", 0.1)
    scheduler = make_schedule(optimizer, settings, 0.1, 3)
    first = trace(optimizer, scheduler, 8)
    saved = scheduler.state_dict(), optimizer.state_dict()
    optimizer = make_optimizer(tiny_model(), "sgd", 0.1)
    scheduler = make_schedule(optimizer, ScheduleSettings(name="step"), 0.1, 3)
    scheduler.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    assert first + trace(optimizer, scheduler, 12) == pytest.approx(straight)


def test_epoch_factor_reads_the_epoch_off_the_batch_count() -> None:
    factor = EpochFactor("multistep", steps_per_epoch=10, gamma=0.5, milestones=(1, 3))
    assert [factor(s) for s in (0, 9, 10, 29, 30, 100)] == [1, 1, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "cosine"}, "unknown schedule"),
    ({"step_size_epochs": 0}, "step_size_epochs"),
    ({"gamma": 1.5}, "gamma"),
    ({"gamma": 0.0}, "gamma"),
    ({"step_size": 0}, "step_size"),
    ({"milestones": (5, 3)}, "milestones"),
    ({"milestones": [3, 5]}, "milestones"),
])
def test_settings_are_checked(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        ScheduleSettings(**fields)


def test_make_schedule_checks_its_arguments(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "sgd", 0.1)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        make_schedule(optimizer, ScheduleSettings(name="constant"), 0.1, 0)
    with pytest.raises(ValueError, match="low <= high"):
        make_schedule(optimizer, ScheduleSettings(), (0.1, 0.01), 4)
    with pytest.raises(ValueError, match="lr must be"):
        make_schedule(optimizer, ScheduleSettings(name="constant"), -1.0, 4)
