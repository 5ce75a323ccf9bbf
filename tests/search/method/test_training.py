"""Triangular2 scheduling with torch's CyclicLR, and the resumable training loop."""

from __future__ import annotations

import math

import pytest
import torch

from search.method.evaluation import evaluate
from search.method.optimizers import make_optimizer
from search.method.training import (
    EpochReport,
    TrainingDiverged,
    TrainingState,
    make_triangular2,
    train_epochs,
)


def lr_trace(optimizer: torch.optim.Optimizer, scheduler, steps: int, key: str = "lr") -> list:
    """The value of ``key`` in the first param group before each of ``steps`` batches."""
    values = []
    for _ in range(steps + 1):
        values.append(optimizer.param_groups[0][key])
        optimizer.step()  # no gradients: parameters stay, but the step order is the real one
        scheduler.step()
    return values


# --------------------------------------------------------------------------- triangular2


def test_triangular2_rises_over_step_size_up_and_halves_each_cycle(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "adam", 1e-3)
    scheduler = make_triangular2(optimizer, (1e-3, 1e-2), steps_per_epoch=4,
                                 step_size_epochs=2)
    assert scheduler.total_size == 16  # a cycle: 2 x (2 epochs x 4 batches)
    lrs = lr_trace(optimizer, scheduler, 48)
    low, high = 1e-3, 1e-2
    assert lrs[0] == pytest.approx(low)
    # linear from base to max over the 8 batches of the first half cycle
    for step in range(9):
        assert lrs[step] == pytest.approx(low + (high - low) * step / 8)
    assert max(lrs[:16]) == pytest.approx(high)
    assert lrs[16] == pytest.approx(low)
    # each cycle's peak is half the previous one's height above the base
    assert lrs[24] == pytest.approx(low + (high - low) / 2)
    assert lrs[40] == pytest.approx(low + (high - low) / 4)
    assert max(lrs[16:32]) == pytest.approx(lrs[24])
    assert min(lrs) == pytest.approx(low)


def test_triangular2_step_size_rounds_and_is_at_least_one(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "sgd", 0.1)
    scheduler = make_triangular2(optimizer, (0.01, 0.1), steps_per_epoch=3,
                                 step_size_epochs=2.5)
    assert scheduler.total_size == 2 * round(7.5)
    optimizer = make_optimizer(tiny_model(), "sgd", 0.1)
    scheduler = make_triangular2(optimizer, (0.01, 0.1), steps_per_epoch=1,
                                 step_size_epochs=0.1)
    assert scheduler.total_size == 2
    lrs = lr_trace(optimizer, scheduler, 4)
    assert lrs == pytest.approx([0.01, 0.1, 0.01, 0.055, 0.01])


def test_momentum_cycles_inversely_for_sgd_with_momentum(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "sgd", 0.01, sgd_momentum=0.9)
    scheduler = make_triangular2(optimizer, (0.01, 0.1), steps_per_epoch=2,
                                 step_size_epochs=2)
    momenta = lr_trace(optimizer, scheduler, 8, key="momentum")
    assert momenta[0] == pytest.approx(0.9)  # LR at its base: momentum at its top
    assert momenta[4] == pytest.approx(0.8)  # LR at its peak: momentum at its bottom
    assert momenta[8] == pytest.approx(0.9)
    assert momenta[2] == pytest.approx(0.85)


def test_adam_betas_do_not_cycle(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "adam", 1e-3)
    scheduler = make_triangular2(optimizer, (1e-3, 1e-2), steps_per_epoch=2,
                                 step_size_epochs=2)
    betas = lr_trace(optimizer, scheduler, 8, key="betas")
    assert all(b == (0.9, 0.999) for b in betas)


def test_sgd_without_momentum_keeps_zero_momentum(tiny_model) -> None:
    optimizer = make_optimizer(tiny_model(), "sgd", 0.01, sgd_momentum=0.0)
    scheduler = make_triangular2(optimizer, (0.01, 0.1), steps_per_epoch=2,
                                 step_size_epochs=2)
    momenta = lr_trace(optimizer, scheduler, 8, key="momentum")
    assert momenta == [0.0] * 9
    assert max(lr_trace(optimizer, scheduler, 4)) > 0.01  # but the LR does cycle


# --------------------------------------------------------------------------- training


def make_run(tiny_model, train, seed: int = 0, optimizer_name: str = "adam"):
    model = tiny_model(seed=seed, filters=4)
    optimizer = make_optimizer(model, optimizer_name, 1e-3)
    scheduler = make_triangular2(optimizer, (1e-3, 2e-2), steps_per_epoch=len(train),
                                 step_size_epochs=1)
    return model, optimizer, scheduler


def test_training_improves_accuracy_and_reports_each_epoch(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=128, batch_size=16)
    model, optimizer, scheduler = make_run(tiny_model, train)
    _, accuracy_before = evaluate(model, val)
    calls: list[tuple[int, int]] = []

    def on_epoch(report: EpochReport, state: TrainingState) -> None:
        calls.append((report.epoch, state.epochs_done))
        assert state.history[-1] is report

    state = train_epochs(model, optimizer, scheduler, train, val, epochs=4, on_epoch=on_epoch)
    assert calls == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert state.epochs_done == 4
    assert [r.epoch for r in state.history] == [1, 2, 3, 4]
    final = state.history[-1]
    assert final.val_accuracy >= 0.9
    assert final.val_accuracy > accuracy_before + 0.3
    assert final.train_loss < state.history[0].train_loss
    assert (final.val_loss, final.val_accuracy) == pytest.approx(evaluate(model, val))
    assert state.best_val_accuracy == max(r.val_accuracy for r in state.history)
    for report in state.history:
        assert 0.0 <= report.train_accuracy <= 1.0
        assert math.isfinite(report.train_loss)
        assert report.seconds >= 0.0
    assert final.lr == optimizer.param_groups[0]["lr"]
    assert model.training  # evaluation restored train mode


def test_resuming_runs_only_the_remaining_epochs(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=64, batch_size=16)
    model, optimizer, scheduler = make_run(tiny_model, train)
    done = [EpochReport(epoch=e, lr=1e-3, train_loss=1.0, train_accuracy=0.5, val_loss=1.0,
                        val_accuracy=0.1 * e, seconds=0.0) for e in (1, 2)]
    state = TrainingState(epochs_done=2, history=list(done))
    seen: list[int] = []
    result = train_epochs(model, optimizer, scheduler, train, val, epochs=5, state=state,
                          on_epoch=lambda report, _: seen.append(report.epoch))
    assert result is state
    assert seen == [3, 4, 5]
    assert result.epochs_done == 5
    assert result.history[:2] == done
    assert [r.epoch for r in result.history] == [1, 2, 3, 4, 5]
    # three epochs of 4 batches went through the scheduler
    assert scheduler.last_epoch == 12


def test_a_finished_state_trains_nothing(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=32, batch_size=16)
    model, optimizer, scheduler = make_run(tiny_model, train)
    before = [p.detach().clone() for p in model.parameters()]
    state = train_epochs(model, optimizer, scheduler, train, val, epochs=3,
                         state=TrainingState(epochs_done=3),
                         on_epoch=lambda *_: pytest.fail("no epoch should run"))
    assert state.epochs_done == 3
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_resume_from_a_checkpoint_matches_an_uninterrupted_run(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=64, batch_size=16)
    straight, optimizer, scheduler = make_run(tiny_model, train)
    train_epochs(straight, optimizer, scheduler, train, val, epochs=4)

    first, optimizer, scheduler = make_run(tiny_model, train)
    state = train_epochs(first, optimizer, scheduler, train, val, epochs=2)
    checkpoint = {
        "model": first.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": state.to_dict(),
    }
    resumed, optimizer, scheduler = make_run(tiny_model, train, seed=7)  # other weights
    resumed.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    state = train_epochs(resumed, optimizer, scheduler, train, val, epochs=4,
                         state=TrainingState.from_dict(checkpoint["state"]))
    assert state.epochs_done == 4
    for name, tensor in straight.state_dict().items():
        assert torch.allclose(tensor, resumed.state_dict()[name], atol=1e-6), name


def test_on_epoch_may_stop_training(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=32, batch_size=16)
    model, optimizer, scheduler = make_run(tiny_model, train)
    state = TrainingState()

    class Stop(Exception):
        pass

    def on_epoch(report: EpochReport, _: TrainingState) -> None:
        if report.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train_epochs(model, optimizer, scheduler, train, val, epochs=5, state=state,
                     on_epoch=on_epoch)
    assert state.epochs_done == 2


def test_a_nan_model_raises_training_diverged(tiny_data, tiny_model) -> None:
    train, val = tiny_data(n_train=32, batch_size=16)
    model, optimizer, scheduler = make_run(tiny_model, train)
    with torch.no_grad():
        model.classifier[-1].weight[0, 0] = math.nan
    called: list[int] = []
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        train_epochs(model, optimizer, scheduler, train, val, epochs=3,
                     on_epoch=lambda report, _: called.append(report.epoch))
    assert called == []


def test_divergence_is_caught_inside_a_long_epoch(tiny_data, tiny_model) -> None:
    # 40 batches: the periodic check inside the epoch sees the NaN
    train, val = tiny_data(n_train=80, batch_size=2)
    model, optimizer, scheduler = make_run(tiny_model, train)
    with torch.no_grad():
        model.features[0].weight.fill_(math.inf)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train_epochs(model, optimizer, scheduler, train, val, epochs=1)


def test_training_state_dict_round_trip() -> None:
    state = TrainingState(
        epochs_done=2,
        history=[EpochReport(1, 0.01, 1.5, 0.4, 1.6, 0.35, 2.0),
                 EpochReport(2, 0.02, 1.1, 0.6, 1.2, 0.55, 2.1)],
    )
    values = state.to_dict()
    assert values["epochs_done"] == 2
    assert values["history"][1]["val_accuracy"] == 0.55
    restored = TrainingState.from_dict(values)
    assert restored == state
    assert restored.best_val_accuracy == 0.55
    assert TrainingState().best_val_accuracy == 0.0
    assert TrainingState.from_dict(TrainingState().to_dict()) == TrainingState()
