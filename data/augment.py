"""Data augmentation on whole batches on the device: no per-sample Python, no DataLoader.

Three transforms, each applied to an NCHW batch (float or uint8) with one draw of random
numbers for the whole batch, from a ``torch.Generator`` on the batch's device:

- horizontal flip with probability ``flip_p``: ``torch.where(mask, x.flip(-1), x)``
  (KellerJordan/cifar10-airbench);
- translation by up to ``translate_pad`` pixels each way, as a crop of the image padded by
  that much on every side (reflect or zero padding). The crop is a gather with per-image
  offsets, so the padded copy is never materialised and uint8 works as well as float;
- random erasing (Zhong et al. 2017) with probability ``erase_p``: a rectangle covering a
  fraction of the image drawn from ``erase_area``, aspect ratio log-uniform in
  ``erase_ratio``, set to 0 (mid-grey for batches normalised by ``data.normalise``).

``Augmentation()`` has every transform off, and an ``Augmenter`` of it returns its input
unchanged (the same tensor), so the default training path is bit-exact with no augmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

TRANSLATE_MODES = ("reflect", "zero")

_AUGMENT_STREAM = 0x617567  # keeps augmentation draws apart from the shuffle's (seed, epoch)


def _probability(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def _interval(name: str, value: tuple[float, float], low: float, high: float) -> None:
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not low < value[0] <= value[1] <= high):
        raise ValueError(f"{name} must be a pair (a, b) with {low:g} < a <= b <= {high:g}, "
                         f"got {value!r}")


@dataclass(frozen=True)
class Augmentation:
    """Augmentation settings; the defaults switch everything off."""

    flip_p: float = 0.0
    """Probability that an image is mirrored left-right."""
    translate_pad: int = 0
    """Largest shift in pixels, each axis, each direction (0: no translation)."""
    translate_mode: str = "reflect"
    """What the shift brings in at the border: ``reflect`` or ``zero``."""
    erase_p: float = 0.0
    """Probability that an image gets one erased rectangle."""
    erase_area: tuple[float, float] = (0.02, 0.33)
    """Range of the erased fraction of the image's area (torchvision's default)."""
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    """Range of the rectangle's height / width, drawn log-uniformly (torchvision's)."""

    def __post_init__(self) -> None:
        _probability("flip_p", self.flip_p)
        _probability("erase_p", self.erase_p)
        pad = self.translate_pad
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"translate_pad must be a non-negative integer, got {pad!r}")
        if self.translate_mode not in TRANSLATE_MODES:
            raise ValueError(f"translate_mode must be one of {TRANSLATE_MODES}, "
                             f"got {self.translate_mode!r}")
        _interval("erase_area", self.erase_area, 0.0, 1.0)
        _interval("erase_ratio", self.erase_ratio, 0.0, math.inf)

    @property
    def enabled(self) -> bool:
        return self.flip_p > 0 or self.translate_pad > 0 or self.erase_p > 0


def flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images with ``mask[n]`` True mirrored left-right, the others as they are."""
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(-1), images)


def _source_index(size: int, shift: torch.Tensor, mode: str) -> tuple[torch.Tensor,
                                                                        torch.Tensor | None]:
    """Per image, the source row (or column) of each output one for a shift of ``shift``:
    output ``i`` reads input ``i + shift``. Returns the indices clamped into the image and,
    for zero padding, the mask of those that fell inside it."""
    index = torch.arange(size, device=shift.device) + shift.view(-1, 1)
    if mode == "reflect":
        last = size - 1
        index = index.abs()  # reflect at 0 (no repeated edge, as F.pad's "reflect")
        index = torch.where(index > last, 2 * last - index, index)
        return index, None
    inside = (index >= 0) & (index < size)
    return index.clamp(0, size - 1), inside


def translate(images: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor,
              mode: str = "reflect") -> torch.Tensor:
    """Each image cropped from its padded copy at offset ``(shift_y[n], shift_x[n])`` from the
    centre: output pixel ``(i, j)`` is input pixel ``(i + shift_y, j + shift_x)``, reflected
    at the border or zero outside it. Shifts must be smaller than the image sides."""
    if mode not in TRANSLATE_MODES:
        raise ValueError(f"mode must be one of {TRANSLATE_MODES}, got {mode!r}")
    n, channels, height, width = images.shape
    if n == 0:
        return images
    limit = min(height, width) - 1
    if int(shift_y.abs().max()) > limit or int(shift_x.abs().max()) > limit:
        raise ValueError(f"shifts must be at most {limit} pixels for {height}x{width} images")
    rows, rows_inside = _source_index(height, shift_y, mode)
    cols, cols_inside = _source_index(width, shift_x, mode)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(channels, device=images.device).view(1, channels, 1, 1)
    out = images[batch, channel, rows.view(n, 1, height, 1), cols.view(n, 1, 1, width)]
    if rows_inside is not None and cols_inside is not None:
        inside = rows_inside.view(n, 1, height, 1) & cols_inside.view(n, 1, 1, width)
        out = out.masked_fill(~inside, 0)
    return out


def erase_boxes(n: int, height: int, width: int, settings: Augmentation,
                generator: torch.Generator) -> torch.Tensor:
    """Per image, ``(top, left, box_height, box_width)`` of a rectangle whose area is a
    fraction of the image drawn from ``settings.erase_area``, shape ``(n, 4)``, int64."""
    device = generator.device
    low, high = settings.erase_area
    area = (low + (high - low) * torch.rand(n, generator=generator, device=device)) * (
        height * width)
    log_low, log_high = math.log(settings.erase_ratio[0]), math.log(settings.erase_ratio[1])
    ratio = torch.exp(log_low + (log_high - log_low) * torch.rand(n, generator=generator,
                                                                     device=device))
    box_h = torch.sqrt(area * ratio).round().clamp(1, height)
    box_w = (area / box_h).round().clamp(1, width)
    box_h = (area / box_w).round().clamp(1, height)  # again, after the width's clamp
    box_h, box_w = box_h.long(), box_w.long()
    top = (torch.rand(n, generator=generator, device=device) * (height - box_h + 1)).long()
    left = (torch.rand(n, generator=generator, device=device) * (width - box_w + 1)).long()
    return torch.stack([top, left, box_h, box_w], dim=1)


def erase(images: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images with the rectangle ``boxes[n]`` set to 0 where ``mask[n]`` is True."""
    n, _, height, width = images.shape
    top, left, box_h, box_w = (boxes[:, k].view(n, 1, 1) for k in range(4))
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    inside = ((rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
              & mask.view(n, 1, 1))
    return images.masked_fill(inside.unsqueeze(1), 0)


def augment_batch(images: torch.Tensor, settings: Augmentation,
                  generator: torch.Generator) -> torch.Tensor:
    """Translation, then flip, then erasing, each where ``settings`` switches it on.
    ``images`` is returned itself when nothing is on; it is never modified in place."""
    if images.ndim != 4:
        raise ValueError(f"images must be NCHW, got shape {tuple(images.shape)}")
    if not settings.enabled or len(images) == 0:
        return images
    n, _, height, width = images.shape
    device = images.device
    if settings.translate_pad > 0:
        pad = settings.translate_pad
        if pad >= min(height, width):
            raise ValueError(f"translate_pad {pad} must be smaller than the image sides "
                             f"({height}x{width})")
        shifts = torch.randint(-pad, pad + 1, (2, n), generator=generator, device=device)
        images = translate(images, shifts[0], shifts[1], settings.translate_mode)
    if settings.flip_p > 0:
        images = flip(images, torch.rand(n, generator=generator, device=device)
                      < settings.flip_p)
    if settings.erase_p > 0:
        chosen = torch.rand(n, generator=generator, device=device) < settings.erase_p
        images = erase(images, erase_boxes(n, height, width, settings, generator), chosen)
    return images


class Augmenter:
    """``augmenter(images)`` augments a batch; ``start_epoch(k)`` reseeds from ``(seed, k)``
    so that a resumed run draws what an uninterrupted one would (as ``DeviceBatches``).
    ``device`` must be the batches' device (``DeviceBatches.device``)."""

    def __init__(self, settings: Augmentation, *, seed: int,
                 device: torch.device | str = "cpu") -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.settings = settings
        self.seed = seed
        self.generator = torch.Generator(device=torch.device(device))
        self.start_epoch(0)

    def start_epoch(self, epoch_index: int) -> None:
        state = np.random.SeedSequence([self.seed, epoch_index, _AUGMENT_STREAM])
        words = state.generate_state(2, dtype=np.uint32)
        self.generator.manual_seed(int(words[0]) << 32 | int(words[1]))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.settings.enabled and images.device != self.generator.device:
            raise ValueError(f"the augmenter draws on {self.generator.device}, the batch is on "
                             f"{images.device}: build it with device={images.device}")
        return augment_batch(images, self.settings, self.generator)
