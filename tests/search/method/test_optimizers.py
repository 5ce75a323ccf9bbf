"""Optimizers by name with the Keras-style L2 on conv kernels as coupled weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import Architecture, build_cnn
from search.method.optimizers import has_momentum, make_optimizer

SHAPE = (3, 8, 8)


def small_model(l2: float = 0.01, batch_norm: bool = False):
    architecture = Architecture(blocks=2, filters=2, fc_units=4, l2=l2, batch_norm=batch_norm)
    return build_cnn(architecture, SHAPE, 3, seed=0)


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_only_conv_kernels_get_twice_l2_as_weight_decay(name: str, batch_norm: bool) -> None:
    model = small_model(l2=0.003, batch_norm=batch_norm)
    optimizer = make_optimizer(model, name, 1e-3)
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d)}
    assert len(kernels) == 4
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == kernels
    for group in optimizer.param_groups:
        assert group["weight_decay"] in (0.0, pytest.approx(0.006))
    # every parameter is optimised exactly once
    ids = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_coupled_decay_equals_the_keras_penalty_gradient() -> None:
    """SGD with weight_decay 2*l2 on kernels == plain SGD on loss + l2 * sum(kernel**2)."""
    images = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0])
    decayed, plain = small_model(l2=0.05), small_model(l2=0.05)

    optimizer = make_optimizer(decayed, "sgd", 0.1)
    loss = nn.functional.cross_entropy(decayed(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    reference = torch.optim.SGD(plain.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(plain(images), labels)
    loss = loss + 0.05 * sum((k**2).sum() for k in plain.conv_kernels())
    reference.zero_grad()
    loss.backward()
    reference.step()

    for (name, a), b in zip(decayed.named_parameters(), plain.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7), name

    # the same step without the penalty ends elsewhere: the decay is not negligible here
    undecayed = small_model(l2=0.0)
    optimizer = make_optimizer(undecayed, "sgd", 0.1)
    loss = nn.functional.cross_entropy(undecayed(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    shift = (undecayed.conv_kernels()[0] - decayed.conv_kernels()[0]).abs().max()
    assert shift > 1e-4


def test_zero_l2_means_no_decay() -> None:
    optimizer = make_optimizer(small_model(l2=0.0), "adam", 1e-3)
    assert all(g["weight_decay"] == 0.0 for g in optimizer.param_groups)


def test_adam_uses_keras_defaults() -> None:
    optimizer = make_optimizer(small_model(), "adam", 2e-3)
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["eps"] == 1e-7
    assert optimizer.defaults["betas"] == (0.9, 0.999)
    assert optimizer.defaults["lr"] == 2e-3
    assert all(g["lr"] == 2e-3 for g in optimizer.param_groups)


def test_rmsprop_and_adamw() -> None:
    rmsprop = make_optimizer(small_model(), "rmsprop", 1e-3)
    assert isinstance(rmsprop, torch.optim.RMSprop)
    assert rmsprop.defaults["alpha"] == 0.9
    assert rmsprop.defaults["eps"] == 1e-7
    adamw = make_optimizer(small_model(), "adamw", 1e-3)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["eps"] == 1e-7


def test_sgd_momentum_is_passed() -> None:
    optimizer = make_optimizer(small_model(), "sgd", 0.05, sgd_momentum=0.9)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    assert make_optimizer(small_model(), "sgd", 0.05).defaults["momentum"] == 0.0


def test_has_momentum() -> None:
    assert has_momentum(make_optimizer(small_model(), "sgd", 0.1, sgd_momentum=0.9))
    assert not has_momentum(make_optimizer(small_model(), "sgd", 0.1, sgd_momentum=0.0))
    assert not has_momentum(make_optimizer(small_model(), "adam", 0.1))
    assert not has_momentum(make_optimizer(small_model(), "rmsprop", 0.1))


def test_unknown_optimizer_is_named() -> None:
    with pytest.raises(ValueError, match="lion"):
        make_optimizer(small_model(), "lion", 0.1)


@pytest.mark.parametrize("name", ["adagrad", "adadelta"])
def test_seed_001_and_002_optimizers_train_with_the_kernel_l2(name: str) -> None:
    model = small_model(l2=0.003)
    optimizer = make_optimizer(model, name, 0.1)
    assert sorted(g["weight_decay"] for g in optimizer.param_groups) == [
        0.0, pytest.approx(0.006)]
    images = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    torch.nn.functional.cross_entropy(model(images), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_optimizer_params_reach_the_optimizer() -> None:
    from search.method.optimizers import OptimizerParams

    params = OptimizerParams(momentum=0.6, betas=(0.8, 0.99), weight_decay=1e-4)
    sgd = make_optimizer(small_model(l2=0.003), "sgd", 0.05, params=params)
    assert sgd.defaults["momentum"] == 0.6
    assert sorted(g["weight_decay"] for g in sgd.param_groups) == [
        pytest.approx(1e-4), pytest.approx(0.006 + 1e-4)]
    for name in ("adam", "adamw"):
        assert make_optimizer(small_model(), name, 1e-3, params=params).defaults["betas"] == (
            0.8, 0.99)
    default = make_optimizer(small_model(), "adam", 1e-3)
    assert default.defaults["betas"] == (0.9, 0.999) and default.defaults["eps"] == 1e-7
    with pytest.raises(ValueError, match="momentum"):
        OptimizerParams(momentum=1.0)


@pytest.mark.parametrize("name", ["prodigy", "schedulefree_adamw"])
def test_lr_free_optimizers_train_a_model_at_their_own_lr(name: str) -> None:
    """Each LR-free optimizer lowers the loss of a small problem at the LR it is meant to run
    at (``LR_FREE_BOUNDS``), with the kernels' L2 in its param groups like every other."""
    from search.method.optimizers import LR_FREE_BOUNDS, evaluation_weights

    torch.manual_seed(0)
    images = torch.randn(32, *SHAPE)
    labels = torch.arange(32) % 3
    model = small_model(l2=0.001)
    optimizer = make_optimizer(model, name, LR_FREE_BOUNDS[name][1])
    assert sorted(g["weight_decay"] for g in optimizer.param_groups) == pytest.approx([0, 0.002])
    with evaluation_weights(optimizer):
        before = nn.functional.cross_entropy(model(images), labels).item()
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    with evaluation_weights(optimizer):
        after = nn.functional.cross_entropy(model(images), labels).item()
    assert after < 0.8 * before


def test_schedule_free_evaluates_its_average_and_trains_on() -> None:
    """Schedule-Free AdamW holds other weights while evaluated than while trained:
    ``evaluation_weights`` swaps them in and back, so training resumes where it was."""
    from search.method.optimizers import evaluation_weights, final_weights

    model = small_model()
    optimizer = make_optimizer(model, "schedulefree_adamw", 0.01)
    images, labels = torch.randn(8, *SHAPE), torch.arange(8) % 3
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    trained = [p.detach().clone() for p in model.parameters()]
    with evaluation_weights(optimizer):
        averaged = [p.detach().clone() for p in model.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(trained, averaged, strict=True))
    assert all(torch.allclose(a, p, atol=1e-6) for a, p in zip(trained, model.parameters(),
                                                            strict=True))
    final_weights(optimizer)
    assert all(torch.allclose(a, p) for a, p in zip(averaged, model.parameters(), strict=True))
    with evaluation_weights(make_optimizer(small_model(), "adam", 1e-3)):
        pass  # a plain optimizer has one set of weights: nothing to swap
