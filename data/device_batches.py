"""Mini-batches served from tensors that already live on the training device.

Every dataset we target (MNIST family, CIFAR, EuroSAT) fits in accelerator memory many times
over, so the images are moved and normalised once and each batch is a slice or gather of a
device tensor. That removes DataLoader workers, pinned-memory copies and per-sample Python,
which dominate step time for small CNNs (the approach of KellerJordan/cifar10-airbench).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator

import numpy as np
import torch


def normalise(images_uint8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Map uint8 pixels to ``p / 255 - 0.5`` in ``dtype``, on the tensor's own device.

    A fixed affine map, not per-dataset mean/std, so any dataset (including image folders)
    needs no statistics pass and inputs are always centred in [-0.5, 0.5].
    """
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"normalise expects uint8 images, got {images_uint8.dtype}")
    if not dtype.is_floating_point:
        raise ValueError(f"normalise needs a floating dtype, got {dtype}")
    return images_uint8.to(dtype).div_(255).sub_(0.5)


def _epoch_seed(seed: int, epoch_index: int) -> int:
    """Mix (seed, epoch) so that (s, e + 1) and (s + 1, e) get unrelated orders, not one."""
    state = np.random.SeedSequence([seed, epoch_index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def _check_seed(seed: int) -> int:
    """Accept any integer type (numpy's too), but not bools or negatives."""
    try:
        value = operator.index(seed)
    except TypeError:
        value = -1
    if isinstance(seed, bool) or value < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return value


class DeviceBatches:
    """Iterate ``(x, y)`` batches of a whole dataset held on ``device``.

    Each ``iter()`` starts the next epoch: a fresh permutation seeded from ``(seed, epoch)``,
    so epochs differ while runs with the same seed repeat exactly. ``epoch(k)`` replays epoch
    ``k`` without touching the counter, which lets a resumed run see the same order. The
    permutation is drawn on the device, so the order for a seed differs between CPU and CUDA.
    With ``shuffle=False`` batches are views of the stored tensors: do not modify them in
    place.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device | str,
        shuffle: bool,
        seed: int,
        drop_last: bool = False,
        channels_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 NCHW, got {images.dtype} shape {tuple(images.shape)}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"need one label per image: {len(images)} images, labels "
                f"shape {tuple(labels.shape)}"
            )
        if len(images) == 0:
            raise ValueError("cannot batch an empty dataset")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_last and batch_size > len(images):
            raise ValueError(
                f"batch_size {batch_size} exceeds the {len(images)} samples and drop_last=True "
                f"would yield no batches"
            )
        self._device = torch.device(device)
        # Move uint8 (a quarter of float32's bytes), then normalise where the data lives.
        x = normalise(images.to(self._device))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self._x = x
        self._y = labels.to(device=self._device, dtype=torch.int64)
        self._batch_size = batch_size
        self._shuffle = shuffle
        self._seed = _check_seed(seed)
        self._drop_last = drop_last
        self._next_epoch = 0

    @property
    def num_samples(self) -> int:
        return len(self._y)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def seed(self) -> int:
        """Seed of the shuffle; settable so one device copy can serve trials of other seeds.

        Changing it changes every epoch's order from then on; the epoch counter is kept.
        """
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = _check_seed(value)

    @property
    def labels(self) -> torch.Tensor:
        """All labels, int64 on the device (read-only: do not modify)."""
        return self._y

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels at ``index`` (a device int64 tensor): one gather each, as
        the shuffled batches are. Lets a sampler other than a permutation pick batches."""
        return self._x[index], self._y[index]

    @property
    def next_epoch(self) -> int:
        """The epoch index the next ``iter()`` will serve."""
        return self._next_epoch

    def __len__(self) -> int:
        if self._drop_last:
            return self.num_samples // self._batch_size
        return math.ceil(self.num_samples / self._batch_size)

    def order(self, epoch_index: int) -> torch.Tensor:
        """The sample order of epoch ``epoch_index`` (its permutation; ``arange`` without
        shuffling): ``epoch(k)``'s batches are ``take`` of consecutive slices of it."""
        if epoch_index < 0:
            raise ValueError(f"epoch_index must be non-negative, got {epoch_index}")
        if not self._shuffle:
            return torch.arange(self.num_samples, device=self._device)
        return self._permutation(epoch_index)

    def _permutation(self, epoch_index: int) -> torch.Tensor:
        generator = torch.Generator(device=self._device)
        generator.manual_seed(_epoch_seed(self._seed, epoch_index))
        return torch.randperm(
            self.num_samples, generator=generator, device=self._device, dtype=torch.int64
        )

    def epoch(self, epoch_index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch_index``, identical every time it is asked for."""
        if epoch_index < 0:
            raise ValueError(f"epoch_index must be non-negative, got {epoch_index}")
        order = self._permutation(epoch_index) if self._shuffle else None
        return self._batches(order)

    def _batches(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        size = self._batch_size
        for start in range(0, len(self) * size, size):
            if order is None:
                yield self._x[start : start + size], self._y[start : start + size]
            else:
                index = order[start : start + size]
                yield self._x[index], self._y[index]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = self.epoch(self._next_epoch)
        self._next_epoch += 1
        return batches
