"""Batch augmentation on the device: flips, pad-and-crop translation, random erasing."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from data.augment import (
    Augmentation,
    Augmenter,
    augment_batch,
    erase_boxes,
    flip,
    translate,
)

EVERYTHING = Augmentation(flip_p=0.5, translate_pad=2, erase_p=0.5)


def batch(n: int = 16, channels: int = 3, side: int = 8, dtype: torch.dtype = torch.float32,
          seed: int = 0) -> torch.Tensor:
    """Distinct pixel values, so no image equals its own mirror or shift by chance."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(1, 256, (n, channels, side, side), generator=generator)
    return images.to(dtype)


def reference_crop(image: torch.Tensor, dy: int, dx: int, pad: int, mode: str) -> torch.Tensor:
    """The slow way: pad one image with F.pad, crop at the offset."""
    padded = functional.pad(image.float().unsqueeze(0), (pad,) * 4,
                            mode="reflect" if mode == "reflect" else "constant")[0]
    height, width = image.shape[-2:]
    return padded[:, pad + dy:pad + dy + height, pad + dx:pad + dx + width].to(image.dtype)


def test_everything_off_returns_the_batch_itself() -> None:
    images = batch()
    augmenter = Augmenter(Augmentation(), seed=3)
    out = augmenter(images)
    assert out is images
    assert torch.equal(out, batch())
    assert not Augmentation().enabled and EVERYTHING.enabled


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_and_dtype_are_kept_and_the_input_untouched(dtype, channels) -> None:
    images = batch(channels=channels, dtype=dtype)
    before = images.clone()
    out = Augmenter(EVERYTHING, seed=0)(images)
    assert out.shape == images.shape and out.dtype == dtype
    assert torch.equal(images, before)
    assert not torch.equal(out, images)


def test_flip_mirrors_exactly_the_masked_images() -> None:
    images = batch(n=6)
    mask = torch.tensor([True, False, False, True, True, False])
    out = flip(images, mask)
    for n in range(6):
        expected = images[n].flip(-1) if mask[n] else images[n]
        assert torch.equal(out[n], expected)


def test_random_flips_follow_the_probability() -> None:
    images = batch(n=400, channels=1, side=4)
    out = Augmenter(Augmentation(flip_p=0.3), seed=1)(images)
    flipped = (out == images.flip(-1)).flatten(1).all(1)
    kept = (out == images).flatten(1).all(1)
    assert torch.all(flipped ^ kept)  # each image is one or the other, exactly
    assert 0.22 < flipped.float().mean() < 0.38
    assert torch.equal(Augmenter(Augmentation(flip_p=1.0), seed=1)(images), images.flip(-1))


@pytest.mark.parametrize("mode", ["reflect", "zero"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_translate_is_a_crop_of_the_padded_image(mode, dtype) -> None:
    images = batch(n=5, channels=2, side=6, dtype=dtype)
    shift_y = torch.tensor([0, -2, 2, 1, -1])
    shift_x = torch.tensor([0, 2, -2, -1, 0])
    out = translate(images, shift_y, shift_x, mode)
    for n in range(5):
        expected = reference_crop(images[n], int(shift_y[n]), int(shift_x[n]), 2, mode)
        assert torch.equal(out[n], expected), n


@pytest.mark.parametrize("mode", ["reflect", "zero"])
def test_random_translation_stays_within_the_pad(mode) -> None:
    pad = 2
    images = batch(n=60, channels=1, side=7)
    out = Augmenter(Augmentation(translate_pad=pad, translate_mode=mode), seed=4)(images)
    seen = set()
    for n in range(len(images)):
        matches = [(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)
                   if torch.equal(out[n], reference_crop(images[n], dy, dx, pad, mode))]
        assert len(matches) == 1, n
        seen.add(matches[0])
    assert len(seen) > 10  # the 25 offsets are all drawn, not one


def test_translate_rejects_a_pad_as_large_as_the_image() -> None:
    with pytest.raises(ValueError, match="smaller than the image"):
        augment_batch(batch(side=4), Augmentation(translate_pad=4), torch.Generator())


def test_erasing_covers_a_rectangle_within_the_area_range() -> None:
    side, low, high = 32, 0.05, 0.2
    settings = Augmentation(erase_p=1.0, erase_area=(low, high))
    images = torch.ones(200, 3, side, side)
    out = Augmenter(settings, seed=5)(images)
    zero = out == 0
    assert torch.equal(zero[:, :1].expand_as(zero), zero)  # all channels alike
    fractions = zero[:, 0].float().mean(dim=(1, 2))
    tolerance = 1.5 / side  # rounding the sides to whole pixels
    assert fractions.min() >= low - tolerance and fractions.max() <= high + tolerance
    assert fractions.max() - fractions.min() > (high - low) / 2  # spread over the range
    for mask in zero[:, 0]:  # a filled rectangle: its bounding box is all zero
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()


def test_erase_boxes_fit_inside_the_image() -> None:
    settings = Augmentation(erase_p=1.0, erase_area=(0.3, 0.9), erase_ratio=(0.1, 10.0))
    boxes = erase_boxes(500, 5, 9, settings, torch.Generator().manual_seed(0))
    top, left, height, width = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (height >= 1).all() and (width >= 1).all()
    assert (top + height <= 5).all() and (left + width <= 9).all()


def test_erasing_probability_zero_erases_nothing() -> None:
    images = batch()
    out = Augmenter(Augmentation(flip_p=1.0, erase_p=0.0), seed=0)(images)
    assert torch.equal(out, images.flip(-1))


def test_same_seed_same_draws_and_epochs_replay() -> None:
    images = batch(n=32)
    first, second = Augmenter(EVERYTHING, seed=7), Augmenter(EVERYTHING, seed=7)
    epoch0 = first(images)
    assert torch.equal(epoch0, second(images))
    assert not torch.equal(epoch0, Augmenter(EVERYTHING, seed=8)(images))
    later = first(images)
    assert not torch.equal(later, epoch0)  # the generator moves on within an epoch
    first.start_epoch(1)
    epoch1 = first(images)
    second.start_epoch(1)
    assert torch.equal(epoch1, second(images))
    first.start_epoch(0)
    assert torch.equal(first(images), epoch0)


@pytest.mark.parametrize(("fields", "message"), [
    ({"flip_p": 1.5}, "flip_p"),
    ({"erase_p": -0.1}, "erase_p"),
    ({"translate_pad": -1}, "translate_pad"),
    ({"translate_pad": True}, "translate_pad"),
    ({"translate_mode": "wrap"}, "translate_mode"),
    ({"erase_area": (0.5, 0.2)}, "erase_area"),
    ({"erase_area": (0.0, 0.2)}, "erase_area"),
    ({"erase_ratio": (2.0,)}, "erase_ratio"),
])
def test_settings_are_checked(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        Augmentation(**fields)


def test_the_augmenter_draws_on_the_batch_device() -> None:
    elsewhere = batch().to("meta")  # a device other than the generator's
    with pytest.raises(ValueError, match="device=meta"):
        Augmenter(EVERYTHING, seed=0)(elsewhere)
    assert Augmenter(Augmentation(), seed=0)(elsewhere) is elsewhere  # off: nothing drawn
