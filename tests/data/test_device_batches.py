"""normalise and DeviceBatches: coverage per epoch, seeded orders, replayable epochs, lengths."""

from __future__ import annotations

import pytest
import torch

from data import DeviceBatches, normalise

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _tagged(n: int, size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose pixel [0, 0, 0] is id % 256 and [0, 0, 1] is id // 256; labels are ids."""
    images = torch.randint(0, 256, (n, 2, size, size), dtype=torch.uint8)
    ids = torch.arange(n)
    images[:, 0, 0, 0] = (ids % 256).to(torch.uint8)
    images[:, 0, 0, 1] = (ids // 256).to(torch.uint8)
    return images, ids


def _ids(x: torch.Tensor) -> torch.Tensor:
    """Recover the ids from normalised images."""
    pixels = ((x[:, 0, 0, :2].float() + 0.5) * 255).round().long()
    return pixels[:, 0] + 256 * pixels[:, 1]


def _order(batches: DeviceBatches, epoch: int | None = None) -> list[int]:
    iterator = iter(batches) if epoch is None else batches.epoch(epoch)
    return torch.cat([y for _, y in iterator]).tolist()


def _make(n: int = 103, **kwargs: object) -> DeviceBatches:
    images, labels = _tagged(n)
    options = {"batch_size": 10, "device": "cpu", "shuffle": True, "seed": 0, **kwargs}
    return DeviceBatches(images, labels, **options)  # type: ignore[arg-type]


def test_normalise_maps_to_centred_unit_range() -> None:
    pixels = torch.tensor([0, 51, 128, 255], dtype=torch.uint8)
    out = normalise(pixels)
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([0, 51, 128, 255]) / 255 - 0.5)
    assert out.min() == -0.5 and out.max() == 0.5
    assert normalise(pixels, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_normalise_rejects_non_uint8_and_integer_dtypes() -> None:
    with pytest.raises(ValueError, match="expects uint8"):
        normalise(torch.zeros(3))
    with pytest.raises(ValueError, match="floating dtype"):
        normalise(torch.zeros(3, dtype=torch.uint8), dtype=torch.int32)


@pytest.mark.parametrize("device", DEVICES)
def test_every_sample_once_per_epoch_with_its_own_label(device: str) -> None:
    batches = _make(device=device)
    for _ in range(3):
        seen = []
        for x, y in batches:
            assert x.device.type == device and y.device.type == device
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            assert torch.equal(_ids(x), y)  # images and labels permuted together
            seen.append(y)
        assert sorted(torch.cat(seen).tolist()) == list(range(103))


@pytest.mark.parametrize("device", DEVICES)
def test_epochs_differ_but_runs_repeat(device: str) -> None:
    first, second = _make(device=device), _make(device=device)
    orders = [_order(first) for _ in range(3)]
    assert orders[0] != orders[1] != orders[2]
    assert [_order(second) for _ in range(3)] == orders
    assert _order(_make(device=device, seed=1)) != orders[0]


def test_neighbouring_seeds_do_not_share_epochs() -> None:
    assert _order(_make(seed=0), epoch=1) != _order(_make(seed=1), epoch=0)


def test_epoch_k_is_replayable_and_matches_iteration() -> None:
    batches = _make()
    replay = _order(batches, epoch=3)
    assert _order(batches, epoch=3) == replay
    assert batches.next_epoch == 0  # epoch() does not advance the counter
    for _ in range(3):
        iter(batches)
    assert batches.next_epoch == 3
    assert _order(batches) == replay
    assert batches.next_epoch == 4
    with pytest.raises(ValueError, match="non-negative"):
        batches.epoch(-1)


def test_no_shuffle_is_in_order_every_epoch() -> None:
    batches = _make(shuffle=False)
    assert _order(batches) == list(range(103))
    assert _order(batches) == list(range(103))


def test_length_and_last_batch() -> None:
    batches = _make(n=103, batch_size=10)
    assert len(batches) == 11
    assert [len(y) for _, y in batches] == [10] * 10 + [3]
    dropping = _make(n=103, batch_size=10, drop_last=True)
    assert len(dropping) == 10
    sizes, seen = [], []
    for _, y in dropping:
        sizes.append(len(y))
        seen.extend(y.tolist())
    assert sizes == [10] * 10 and len(set(seen)) == 100
    assert len(_make(n=100, batch_size=10)) == len(_make(n=100, batch_size=10, drop_last=True))


def test_stored_values_are_normalised_into_range() -> None:
    images = torch.tensor([0, 255, 128, 7], dtype=torch.uint8).view(4, 1, 1, 1)
    batches = DeviceBatches(
        images, torch.arange(4), batch_size=4, device="cpu", shuffle=False, seed=0
    )
    (x, _), *_ = list(batches)
    assert x.flatten().tolist() == pytest.approx(
        [-0.5, 0.5, 128 / 255 - 0.5, 7 / 255 - 0.5], abs=1e-6
    )
    assert float(x.min()) >= -0.5 and float(x.max()) <= 0.5


def test_channels_last_batches() -> None:
    for shuffle in (True, False):
        batches = _make(channels_last=True, shuffle=shuffle)
        x, _ = next(iter(batches))
        assert x.is_contiguous(memory_format=torch.channels_last)
        assert x.shape == (10, 2, 4, 4)


def test_seed_can_be_changed_for_a_new_trial() -> None:
    batches = _make(seed=0)
    assert batches.seed == 0
    batches.seed = 5
    assert batches.seed == 5
    assert _order(batches, epoch=2) == _order(_make(seed=5), epoch=2)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        batches.seed = -1


def test_properties() -> None:
    batches = _make(n=50, batch_size=8)
    assert batches.num_samples == 50
    assert batches.batch_size == 8
    assert batches.device == torch.device("cpu")


def test_invalid_arguments() -> None:
    images, labels = _tagged(10)
    kwargs = {"device": "cpu", "shuffle": True, "seed": 0}
    with pytest.raises(ValueError, match="uint8 NCHW"):
        DeviceBatches(images.float(), labels, batch_size=2, **kwargs)
    with pytest.raises(ValueError, match="one label per image"):
        DeviceBatches(images, labels[:9], batch_size=2, **kwargs)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DeviceBatches(images, labels, batch_size=0, **kwargs)
    with pytest.raises(ValueError, match="drop_last=True would yield no batches"):
        DeviceBatches(images, labels, batch_size=11, drop_last=True, **kwargs)
    with pytest.raises(ValueError, match="empty"):
        DeviceBatches(images[:0], labels[:0], batch_size=2, **kwargs)
