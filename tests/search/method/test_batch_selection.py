"""Mini-batch sampling strategies: uniform, Online Batch Selection, Adaptive Sampling."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional

from data.augment import Augmentation, Augmenter
from search.method.batch_selection import (
    BATCH_SAMPLERS,
    AdaptiveSampling,
    Batch,
    BatchSamplingSettings,
    OnlineBatchSelection,
    UniformBatches,
    bin_probabilities,
    gradient_bound,
    importance_weights,
    instance_probabilities,
    make_batch_sampler,
    obs_rank_probabilities,
    smooth,
)
from search.method.optimizers import make_optimizer
from search.method.step import train_step
from search.method.training import train_epochs

ADAPTIVE = BatchSamplingSettings(strategy="adaptive")
OBS = BatchSamplingSettings(strategy="obs")


def drawn_indices(sampler, epochs: range, seed_losses: int = 0) -> list[torch.Tensor]:
    """Serve ``epochs`` and observe each batch with made-up losses and logits."""
    generator = torch.Generator().manual_seed(seed_losses)
    drawn = []
    for epoch in epochs:
        for batch in sampler.epoch(epoch):
            drawn.append(batch.indices)
            n = len(batch.labels)
            logits = torch.randn(n, sampler.num_bins, generator=generator)
            sampler.observe(batch, torch.rand(n, generator=generator) + 0.1, logits)
    return drawn


# --------------------------------------------------------------------------- arithmetic


def test_obs_rank_probabilities_decay_by_the_selection_pressure() -> None:
    probabilities = obs_rank_probabilities(1000, 100.0)
    assert float(probabilities.sum()) == pytest.approx(1.0)
    assert torch.all(probabilities[1:] < probabilities[:-1])
    assert float(probabilities[0] / probabilities[-1]) == pytest.approx(100 ** 0.999, rel=1e-4)


def test_obs_with_pressure_one_is_uniform() -> None:
    probabilities = obs_rank_probabilities(250, 1.0)
    assert torch.allclose(probabilities, torch.full((250,), 1 / 250))


def test_bin_probabilities_follow_the_square_root_of_the_accumulated_bounds() -> None:
    probabilities = bin_probabilities(torch.tensor([1.0, 4.0, 9.0, 0.0]))
    assert probabilities.tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6, 0.0])
    assert bin_probabilities(torch.zeros(4)).tolist() == [0.25] * 4


def test_instance_probabilities_are_the_losses_normalised_within_each_bin() -> None:
    losses = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0])
    bins = torch.tensor([0, 0, 1, 1, 2])
    q = instance_probabilities(losses, bins, 3)
    assert q.tolist() == pytest.approx([0.25, 0.75, 0.5, 0.5, 1.0])
    assert smooth(torch.tensor([1.0]), torch.tensor([0.0]), 0.9).item() == pytest.approx(0.9)


def test_gradient_bound_is_the_squared_norm_of_the_logit_gradient() -> None:
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    functional.cross_entropy(logits, labels, reduction="sum").backward()
    expected = logits.grad.square().sum(1)
    assert torch.allclose(gradient_bound(logits, labels), expected, atol=1e-6)


def test_importance_weights_make_the_weighted_loss_unbiased() -> None:
    generator = torch.Generator().manual_seed(1)
    losses = torch.rand(50, generator=generator) * 3
    probabilities = torch.rand(50, generator=generator) + 0.05
    probabilities /= probabilities.sum()
    draws = torch.multinomial(probabilities, 400_000, replacement=True, generator=generator)
    weighted = importance_weights(probabilities[draws], 50) * losses[draws]
    assert float(weighted.mean()) == pytest.approx(float(losses.mean()), rel=0.01)
    assert abs(float(losses[draws].mean()) - float(losses.mean())) > 0.02  # unweighted: biased


# --------------------------------------------------------------------------- samplers


def test_the_registry_and_the_default() -> None:
    assert set(BATCH_SAMPLERS) == {"uniform", "obs", "adaptive"}
    assert BatchSamplingSettings().strategy == "uniform"
    assert (ADAPTIVE.beta, ADAPTIVE.delta_p, ADAPTIVE.delta_q) == (10, 0.9, 0.1)


def test_uniform_serves_the_shuffled_epochs_batch_for_batch(tiny_data) -> None:
    train, _ = tiny_data(n_train=40, batch_size=16)
    sampler = make_batch_sampler(BatchSamplingSettings(), train)
    assert type(sampler) is UniformBatches and not sampler.observes
    for epoch in (0, 3):
        served = list(sampler.epoch(epoch))
        expected = list(train.epoch(epoch))
        assert len(served) == len(expected) == 3
        for batch, (images, labels) in zip(served, expected, strict=True):
            assert torch.equal(batch.images, images) and torch.equal(batch.labels, labels)
            assert batch.weights is None


@pytest.mark.parametrize("settings", [OBS, ADAPTIVE])
def test_the_first_epoch_is_the_uniform_one_then_batches_keep_their_sizes(
        tiny_data, settings) -> None:
    train, _ = tiny_data(n_train=40, batch_size=16)
    sampler = make_batch_sampler(settings, train)
    burn_in = list(sampler.epoch(0))
    for batch, (images, labels) in zip(burn_in, train.epoch(0), strict=True):
        assert torch.equal(batch.images, images) and torch.equal(batch.labels, labels)
        assert batch.weights is None
        sampler.observe(batch, torch.ones(len(labels)), torch.zeros(len(labels), 4))
    assert sorted(torch.cat([b.indices for b in burn_in]).tolist()) == list(range(40))
    sizes = []
    for batch in sampler.epoch(1):
        sizes.append(len(batch.labels))
        images, labels = train.take(batch.indices)
        assert torch.equal(batch.images, images) and torch.equal(batch.labels, labels)
        assert (batch.weights is None) == (settings.strategy == "obs")
        sampler.observe(batch, torch.ones(len(batch.labels)), torch.zeros(len(batch.labels), 4))
    assert sizes == [16, 16, 8]


def test_adaptive_probabilities_sum_to_one_and_follow_the_bins(tiny_data) -> None:
    train, _ = tiny_data(n_train=48, batch_size=8)
    sampler = make_batch_sampler(ADAPTIVE, train)
    assert isinstance(sampler, AdaptiveSampling)
    assert torch.allclose(sampler.probabilities(), torch.full((48,), 1 / 48))
    drawn_indices(sampler, range(4))
    pi = sampler.probabilities()
    assert float(pi.sum()) == pytest.approx(1.0)
    assert torch.all(pi > 0)
    for label in range(4):  # within a class, q sums to 1; the class as a whole has p_j
        members = sampler.bins == label
        assert float(sampler.q[members].sum()) == pytest.approx(1.0, abs=1e-5)
        assert float(pi[members].sum()) == pytest.approx(float(sampler.p[label]), abs=1e-5)
    assert float(sampler.p.sum()) == pytest.approx(1.0)
    assert not torch.allclose(sampler.p, torch.full((4,), 0.25))  # P has adapted


def test_adaptive_bin_probabilities_are_the_root_of_the_accumulated_bounds(tiny_data) -> None:
    # beta = 1, no smoothing: after one burn-in batch, p_j ∝ sqrt(sum of G_i / q_i) over it
    train, _ = tiny_data(n_train=16, batch_size=16)
    settings = BatchSamplingSettings(strategy="adaptive", beta=1, delta_p=0.0)
    sampler = make_batch_sampler(settings, train)
    batch = next(iter(sampler.epoch(0)))
    logits = torch.randn(16, 4, generator=torch.Generator().manual_seed(2))
    sampler.observe(batch, torch.ones(16), logits)
    bounds = gradient_bound(logits, batch.labels) * 4  # q = 1/4: 4 samples per class
    accumulated = torch.zeros(4).index_add_(0, batch.labels, bounds)
    assert torch.allclose(sampler.p, accumulated.sqrt() / accumulated.sqrt().sum())


def test_adaptive_p_is_recomputed_every_beta_batches_and_smoothed(tiny_data) -> None:
    train, _ = tiny_data(n_train=32, batch_size=4)
    settings = BatchSamplingSettings(strategy="adaptive", beta=3, delta_p=0.5)
    sampler = make_batch_sampler(settings, train)
    history = []
    batches = sampler.epoch(0)
    for step in range(6):
        batch = next(batches)
        if step == 3:
            accumulated = sampler.accumulated.clone()
        logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(step))
        sampler.observe(batch, torch.ones(4), logits)
        history.append(sampler.p.clone())
    assert torch.equal(history[0], history[1]) and torch.equal(history[3], history[4])
    assert not torch.equal(history[1], history[2])
    assert float(sampler.accumulated.sum()) == 0.0  # emptied at the recomputation
    assert accumulated.sum() == 0.0
    assert float(history[2].sum()) == pytest.approx(1.0)


def test_adaptive_draws_hard_samples_more_and_weights_them_down(tiny_data) -> None:
    train, _ = tiny_data(n_train=40, batch_size=40)
    settings = BatchSamplingSettings(strategy="adaptive", delta_q=0.0)
    sampler = make_batch_sampler(settings, train)
    pattern = torch.where(torch.arange(40) % 5 == 0, 4.0, 0.5)  # a fifth are hard
    batch = next(iter(sampler.epoch(0)))
    sampler.observe(batch, pattern[batch.indices], torch.zeros(40, 4))
    served = next(iter(sampler.epoch(1)))
    sampler.observe(served, pattern[served.indices], torch.zeros(40, 4))
    hard = pattern > 1  # no smoothing: q is now the losses normalised in each class
    for label in range(4):
        members = sampler.bins == label
        ratio = sampler.q[members & hard].min() / sampler.q[members & ~hard].max()
        assert float(ratio) == pytest.approx(8.0)
    pi = sampler.probabilities()
    counts = torch.bincount(torch.multinomial(pi, 20_000, replacement=True), minlength=40)
    assert counts[hard].sum() > counts[~hard].sum()
    index, weights = sampler._draw(500)
    assert torch.allclose(weights, 1 / (40 * pi[index]))
    assert weights[hard[index]].max() < weights[~hard[index]].min()


def test_obs_favours_the_highest_losses(tiny_data) -> None:
    train, _ = tiny_data(n_train=100, batch_size=100)
    sampler = make_batch_sampler(BatchSamplingSettings(strategy="obs",
                                                       selection_pressure=1e4), train)
    assert isinstance(sampler, OnlineBatchSelection)
    batch = next(iter(sampler.epoch(0)))
    losses = batch.indices.float() + 1  # sample i has loss i + 1
    sampler.observe(batch, losses, torch.zeros(100, 4))
    served = next(iter(sampler.epoch(1)))
    assert served.weights is None
    assert served.indices.float().mean() > 70
    probabilities = sampler.probabilities()
    assert float(probabilities.sum()) == pytest.approx(1.0)
    assert int(probabilities.argmax()) == 99 and int(probabilities.argmin()) == 0


@pytest.mark.parametrize("settings", [OBS, ADAPTIVE])
def test_draws_are_seeded(tiny_data, settings) -> None:
    train, _ = tiny_data(n_train=48, batch_size=8)
    first = drawn_indices(make_batch_sampler(settings, train), range(3))
    again = drawn_indices(make_batch_sampler(settings, train), range(3))
    other = drawn_indices(make_batch_sampler(settings, train, seed=5), range(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first[6:], other[6:], strict=True))


@pytest.mark.parametrize("settings", [OBS, ADAPTIVE])
def test_a_sampler_resumes_from_its_state_dict(tiny_data, settings) -> None:
    train, _ = tiny_data(n_train=48, batch_size=8)
    straight = drawn_indices(make_batch_sampler(settings, train), range(4))
    first = make_batch_sampler(settings, train)
    drawn = drawn_indices(first, range(2))
    resumed = make_batch_sampler(settings, train)
    resumed.load_state_dict(first.state_dict())
    # the made-up losses continue from where the first two epochs left their generator
    generator_state = torch.Generator().manual_seed(0)
    for _ in range(12):
        torch.randn(8, 4, generator=generator_state)
        torch.rand(8, generator=generator_state)
    later = []
    for epoch in (2, 3):
        for batch in resumed.epoch(epoch):
            later.append(batch.indices)
            logits = torch.randn(8, 4, generator=generator_state)
            resumed.observe(batch, torch.rand(8, generator=generator_state) + 0.1, logits)
    assert all(torch.equal(a, b) for a, b in zip(straight, drawn + later, strict=True))


def test_train_step_weights_the_per_sample_losses(tiny_model) -> None:
    images = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    seen = []
    losses = []
    for weights in (None, torch.ones(6), torch.tensor([2.0, 0, 0, 0, 0, 1])):
        model = tiny_model()
        optimizer = make_optimizer(model, "sgd", 0.0)
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        loss, _ = train_step(model, optimizer, constant, images, labels, weights=weights,
                             on_losses=lambda per_sample, logits: seen.append(
                                 (per_sample, logits)))
        losses.append(loss)
    per_sample, logits = seen[0]
    assert per_sample.shape == (6,) and logits.shape == (6, 4)
    assert torch.allclose(per_sample, functional.cross_entropy(logits, labels,
                                                               reduction="none"))
    assert losses[0] == pytest.approx(float(per_sample.mean()))
    assert losses[1] == pytest.approx(float(losses[0]))
    assert losses[2] == pytest.approx(float(2 * per_sample[0] + per_sample[5]) / 6)


@pytest.mark.parametrize("strategy", ["uniform", "obs", "adaptive"])
def test_training_with_each_strategy_stays_finite_and_learns(tiny_data, tiny_model,
                                                             strategy) -> None:
    train, val = tiny_data(n_train=96, batch_size=16)
    model = tiny_model(filters=4)
    optimizer = make_optimizer(model, "adam", 1e-2)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    sampler = make_batch_sampler(BatchSamplingSettings(strategy=strategy, beta=2), train)
    state = train_epochs(model, optimizer, constant, train, val, epochs=4, sampler=sampler)
    losses = [r.train_loss for r in state.history]
    assert all(math.isfinite(loss) for loss in losses)
    assert state.history[-1].val_accuracy > 0.5
    for value in sampler.state_dict().values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert torch.isfinite(value).all()


def test_the_uniform_sampler_trains_exactly_as_no_sampler(tiny_data, tiny_model) -> None:
    results = []
    for sampler_on in (False, True):
        train, val = tiny_data(n_train=48, batch_size=16)
        model = tiny_model(filters=4)
        optimizer = make_optimizer(model, "adam", 1e-2)
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        sampler = make_batch_sampler(BatchSamplingSettings(), train) if sampler_on else None
        train_epochs(model, optimizer, constant, train, val, epochs=2, sampler=sampler)
        results.append(model.state_dict())
    for name, tensor in results[0].items():
        assert torch.equal(tensor, results[1][name]), name


def test_observing_a_batch_it_did_not_serve_is_refused(tiny_data) -> None:
    train, _ = tiny_data(n_train=16, batch_size=8)
    sampler = make_batch_sampler(OBS, train)
    with pytest.raises(ValueError, match="observes only"):
        sampler.observe(Batch(torch.zeros(1), torch.zeros(1)), torch.ones(1), torch.ones(1, 4))


@pytest.mark.parametrize(("fields", "message"), [
    ({"strategy": "importance"}, "unknown batch sampling"),
    ({"selection_pressure": 0.5}, "selection_pressure"),
    ({"selection_pressure": math.inf}, "selection_pressure"),
    ({"beta": 0}, "beta"),
    ({"beta": 2.5}, "beta"),
    ({"delta_p": 1.0}, "delta_p"),
    ({"delta_q": -0.1}, "delta_q"),
])
def test_settings_are_checked(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        BatchSamplingSettings(**fields)


def test_train_epochs_augments_each_batch_reproducibly(tiny_data, tiny_model) -> None:
    def trained(augment: Augmenter | None) -> dict[str, torch.Tensor]:
        train, val = tiny_data(n_train=48, batch_size=16)
        model = tiny_model(filters=4)
        optimizer = make_optimizer(model, "adam", 1e-2)
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        train_epochs(model, optimizer, constant, train, val, epochs=2, augment=augment)
        return model.state_dict()

    plain = trained(None)
    off = trained(Augmenter(Augmentation(), seed=0))
    flips = trained(Augmenter(Augmentation(flip_p=0.5, translate_pad=1), seed=0))
    again = trained(Augmenter(Augmentation(flip_p=0.5, translate_pad=1), seed=0))
    assert all(torch.equal(plain[name], off[name]) for name in plain)
    assert not all(torch.equal(plain[name], flips[name]) for name in plain)
    assert all(torch.equal(flips[name], again[name]) for name in plain)
