"""One design -> one training run (``search.method.recipe``): every family, optimizer,
schedule and batch sampling strategy trains a few steps without NaN; the thesis' default is
the triangular2 run it always was, bit for bit; normalisation, augmentation and L1 do what
the design says, in the range test too."""

from __future__ import annotations

import copy
import dataclasses
import math

import optuna
import pytest
import torch

from data import ImageDataset
from search.config import parse_config
from search.method.lrrt.run import run_lrrt
from search.method.normalisation import Standardise, channel_statistics
from search.method.optimizers import OPTIMIZERS, make_optimizer
from search.method.prepared_data import DataOnDevice
from search.method.recipe import build_augmenter, build_model, build_sampler, training_run
from search.method.schedules import SCHEDULES, make_triangular2
from search.method.step import train_step
from search.method.suggest import sample_trial_config
from search.method.training import train_epochs
from search.method.trial_config import TrialConfig

SIDE = 16  # LeNet-5 needs at least 12x12
CLASSES = 4


def blocks_images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 16x16 images whose class is the bright quadrant, on a noisy dark background."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % CLASSES
    images = torch.randint(0, 60, (count, 1, SIDE, SIDE), generator=generator,
                           dtype=torch.uint8)
    half = SIDE // 2
    for label in range(CLASSES):
        row, col = divmod(label, 2)
        chosen = labels == label
        images[chosen, :, row * half:(row + 1) * half, col * half:(col + 1) * half] += 150
    return images, labels


@pytest.fixture(scope="module")
def data() -> DataOnDevice:
    train_images, train_labels = blocks_images(128, 0)
    val_images, val_labels = blocks_images(32, 1)
    dataset = ImageDataset("blocks", train_images, train_labels, val_images, val_labels,
                           tuple(str(k) for k in range(CLASSES)))
    return DataOnDevice(dataset, torch.device("cpu"), eval_batch_size=32)


def design(**space: object) -> TrialConfig:
    """The design a config with this one-choice ``space`` samples."""
    raw = {"study": "recipe", "dataset": {"name": "fashion-mnist"},
           "space": {"blocks": [1], "filters": [4], "optimizer": ["adam"],
                     "lr_range": [[1.0e-3, 1.0e-2]], "batch_size": [32], "fc_units": [16],
                     **{key: [value] for key, value in space.items()}},
           "model": {"l2": 0.0005},
           "lrrt": {"epochs": 1, "sma_periods": 2, "bound_rule": "smith_quarter",
                    "compare_rule": None},
           "train": {"epochs": 2, "step_size_epochs": 1, "sgd_momentum": 0.9,
                     "decay": {"step_size": 1, "milestones": [1]}}}
    return sample_trial_config(optuna.trial.FixedTrial({}), parse_config(raw))


def trains(config: TrialConfig, data: DataOnDevice, epochs: int = 2) -> list[float]:
    run = training_run(config, data, (1e-3, 1e-2))
    state = run.fit(data.val, epochs=epochs)
    losses = [report.train_loss for report in state.history]
    assert all(math.isfinite(loss) for loss in losses), losses
    assert all(0.0 <= report.val_accuracy <= 1.0 for report in state.history)
    return losses


@pytest.mark.parametrize("family", ["thesis", "lenet5", "vgg", "resnet18"])
def test_every_family_trains(family: str, data: DataOnDevice) -> None:
    trains(design(architecture=family, activation="relu6", batch_norm="after"), data, 1)


def test_pretrained_family_trains_from_scratch(data: DataOnDevice) -> None:
    trains(design(architecture="pretrained", backbone="resnet18", weights="none"), data, 1)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_trains(optimizer: str, data: DataOnDevice) -> None:
    trains(design(optimizer=optimizer, weight_decay=1e-4), data, 1)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_schedule_trains_and_starts_where_it_says(schedule: str,
                                                       data: DataOnDevice) -> None:
    config = design(schedule=schedule)
    run = training_run(config, data, (1e-3, 1e-2))
    first = run.optimizer.param_groups[0]["lr"]
    assert first == pytest.approx(1e-3 if schedule == "triangular2" else 1e-2)
    trains(config, data)


@pytest.mark.parametrize("strategy", ["uniform", "obs", "adaptive"])
def test_every_sampling_strategy_trains(strategy: str, data: DataOnDevice) -> None:
    config = design(sampling=strategy)
    sampler = build_sampler(config, data.train(32, 0))
    assert (sampler is None) == (strategy == "uniform")
    trains(config, data, 3)  # past the loss-based strategies' uniform burn-in epoch


def test_the_thesis_default_is_the_plain_triangular2_run(data: DataOnDevice) -> None:
    """The default design through the recipe equals the loop before the recipe had
    schedules, samplers, augmentation or normalisation: same weights after two epochs."""
    for optimizer in ("adam", "sgd"):
        config = design(optimizer=optimizer)
        run = training_run(config, data, (1e-3, 1e-2))
        assert run.sampler is None and run.augment is None
        ours = run.fit(data.val, epochs=2)

        model = build_model(config, data)
        before = make_optimizer(model, optimizer, 1e-3, sgd_momentum=0.9)
        train = data.train(config.batch_size, config.seed)
        scheduler = make_triangular2(before, (1e-3, 1e-2), steps_per_epoch=len(train),
                                     step_size_epochs=1)
        theirs = train_epochs(model, before, scheduler, train, data.val, epochs=2)
        assert [r.train_loss for r in ours.history] == [r.train_loss for r in theirs.history]
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, run.model.state_dict()[name]), name


def test_normalise_standardises_with_the_training_split(data: DataOnDevice) -> None:
    model = build_model(design(normalise=True), data)
    first = model.features[0]
    assert isinstance(first, Standardise)
    mean, std = channel_statistics(data.dataset.train_images)
    images = data.dataset.train_images.float() / 255 - 0.5
    assert mean.item() == pytest.approx(images.mean().item(), abs=1e-5)
    assert std.item() == pytest.approx(images.std(unbiased=False).item(), rel=1e-4)
    out = first(images)
    assert out.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert out.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)
    plain = build_model(design(), data)
    assert not isinstance(plain.features[0], Standardise)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in plain.parameters())  # statistics are buffers, not parameters
    trains(design(normalise=True), data, 1)


def test_augmentation_is_off_unless_the_design_says(data: DataOnDevice) -> None:
    train = data.train(32, 0)
    assert build_augmenter(design(), train) is None
    augmenter = build_augmenter(design(flip=1.0, translate=2, erase=0.5), train)
    assert augmenter is not None and augmenter.settings.translate_pad == 2
    trains(design(flip=0.5, translate=2, erase=0.5), data, 1)


def test_l1_is_added_to_the_loss(data: DataOnDevice) -> None:
    config = design(l1=0.01)
    model = build_model(config, data)
    assert model.l1 == 0.01
    images, labels = next(iter(data.train(32, 0).epoch(0)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    with torch.no_grad():
        plain = torch.nn.functional.cross_entropy(model(images), labels)
        penalty = model.l1_penalty()
    loss, _ = train_step(model, optimizer, scheduler, images, labels)
    assert loss.item() == pytest.approx((plain + 0.01 * penalty).item(), rel=1e-5)


def test_a_checkpointed_run_resumes_with_its_sampler(data: DataOnDevice) -> None:
    config = design(sampling="obs")
    run = training_run(config, data, (1e-3, 1e-2))
    run.fit(data.val, epochs=2)
    saved = run.state_dict()
    assert saved["sampler"] is not None and "losses" in saved["sampler"]
    again = training_run(config, data, (1e-3, 1e-2))
    again.load_state_dict(copy.deepcopy(saved))  # CyclicLR's loading pops from its dict
    assert again.sampler is not None and run.sampler is not None
    assert torch.equal(again.sampler.state_dict()["losses"], run.sampler.state_dict()["losses"])
    older = {key: value for key, value in saved.items() if key != "sampler"}
    training_run(config, data, (1e-3, 1e-2)).load_state_dict(older)  # no sampler state: ok


@pytest.mark.parametrize("space", [
    {"sampling": "adaptive"}, {"flip": 0.5, "translate": 1}, {"normalise": True},
    {"architecture": "resnet18", "optimizer": "sgd", "momentum": 0.6},
])
def test_the_range_test_trains_the_design_as_its_training_will(
        space: dict, data: DataOnDevice) -> None:
    config = dataclasses.replace(design(**space),
                                 lrrt=dataclasses.replace(design().lrrt, epochs=2.0))
    result = run_lrrt(config, data)
    assert len(result.curve.losses) > 4
    assert all(math.isfinite(loss) for loss in result.curve.losses)


def test_the_range_test_differs_with_the_sampling_strategy(data: DataOnDevice) -> None:
    """After the uniform burn-in epoch a loss-based strategy draws other batches."""
    def curve(strategy: str) -> list[float]:
        config = design(sampling=strategy)
        config = dataclasses.replace(config, lrrt=dataclasses.replace(config.lrrt, epochs=2.0))
        return run_lrrt(config, data).curve.losses

    uniform, obs = curve("uniform"), curve("obs")
    steps = len(data.train(32, 0))
    assert uniform[:steps] == pytest.approx(obs[:steps], rel=1e-5)  # per-sample losses' mean
    assert uniform[steps:] != pytest.approx(obs[steps:], rel=1e-3)


def colour_data(device: torch.device) -> DataOnDevice:
    """The blocks images in three channels (channels_last differs from NCHW only there)."""
    train_images, train_labels = blocks_images(128, 0)
    val_images, val_labels = blocks_images(32, 1)
    dataset = ImageDataset("colour", train_images.repeat(1, 3, 1, 1), train_labels,
                           val_images.repeat(1, 3, 1, 1), val_labels,
                           tuple(str(k) for k in range(CLASSES)))
    return DataOnDevice(dataset, device, eval_batch_size=32)


def memory_formats(data: DataOnDevice) -> tuple[bool, bool]:
    """Whether a training batch and the first conv kernel of a design are channels_last."""
    images, _ = next(iter(data.train(32, 0).epoch(0)))
    model = build_model(design(), data)
    kernel = model.conv_kernels()[0]
    return (images.is_contiguous(memory_format=torch.channels_last),
            kernel.is_contiguous(memory_format=torch.channels_last))


def test_on_the_cpu_models_and_batches_stay_nchw() -> None:
    data = colour_data(torch.device("cpu"))
    assert not data.channels_last and data.memory_format == torch.contiguous_format
    assert memory_formats(data) == (False, False)


@pytest.mark.gpu
def test_on_a_card_models_and_batches_are_channels_last() -> None:
    data = colour_data(torch.device("cuda"))
    assert data.channels_last and data.memory_format == torch.channels_last
    assert memory_formats(data) == (True, True)
    assert data.val.take(torch.arange(4, device="cuda"))[0].is_contiguous(
        memory_format=torch.channels_last)
    losses = trains(design(), data)  # and it trains, channels_last end to end
    assert len(losses) == 2
