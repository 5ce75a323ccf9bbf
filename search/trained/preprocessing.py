"""What an image goes through before a trained model sees it, recorded by ``train`` and
replayed by ``predict``: exactly the training images' path, so a test image read from a PNG
gives the same input tensor, bit for bit, as the same image in the training data.

1. decode with Pillow as a folder dataset does (``data.imagefolder.decode_image``): 16-bit
   grey scaled to 8 bits, then converted to ``L`` (one channel) or ``RGB`` (three);
2. resize to the model's input, with the dataset's own filter (``data.registry
   .resize_filter``): Pillow's bilinear filter for folder datasets, torch's antialiased
   bilinear one for IDX and CIFAR (``data.resize``); an image already that size is left
   alone;
3. ``p / 255 - 0.5`` in float32 (``data.normalise``), as every batch is served;
4. per-channel standardisation with the training split's statistics when the design has
   ``normalise``: it is the model's first layer (``Standardise``), so it travels inside the
   weights and the portable file; the statistics are recorded here for people to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from data import DatasetError, normalise
from data.imagefolder import decode_image, image_header
from data.registry import RESIZE_PILLOW, RESIZE_TORCH
from data.resize import resize_images
from search.errors import UserError
from search.method.normalisation import Standardise

INPUT_SCALE = "p / 255 - 0.5"
"""The fixed map from uint8 pixels to the model's float input (``data.normalise``)."""
MIN_SIDE_FRACTION = 4
"""An image narrower or lower than the model's side / 4 is refused: scaling it up more than
four times would invent the picture (a 1x1 image is never a photo of anything)."""
MIN_SIDE = 2


@dataclass(frozen=True)
class Preprocessing:
    channels: int
    height: int
    width: int
    resize: str
    """``data.registry.RESIZE_PILLOW`` or ``RESIZE_TORCH``."""
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    """The model's ``Standardise`` statistics (inside the model); None: no standardising."""

    @property
    def mode(self) -> str:
        """Pillow's mode for the model's channels."""
        return "L" if self.channels == 1 else "RGB"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    @property
    def min_size(self) -> tuple[int, int]:
        """The smallest (width, height) an image may have."""
        return (max(MIN_SIDE, math.ceil(self.width / MIN_SIDE_FRACTION)),
                max(MIN_SIDE, math.ceil(self.height / MIN_SIDE_FRACTION)))

    @classmethod
    def of_training(cls, input_shape: tuple[int, int, int], resize: str,
                    model: torch.nn.Module) -> Preprocessing:
        """The preprocessing of a model trained on images of ``input_shape`` (the dataset's,
        after ``image_size``) resized with ``resize``; the statistics from its
        ``Standardise`` layer, if it has one."""
        layer = next((m for m in model.modules() if isinstance(m, Standardise)), None)
        mean = std = None
        if layer is not None:
            mean = tuple(float(v) for v in layer.mean.flatten().tolist())
            std = tuple(float(v) for v in layer.std.flatten().tolist())
        channels, height, width = input_shape
        return cls(channels, height, width, resize, mean, std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "color": self.mode,
            "channels": self.channels,
            "size": [self.height, self.width],
            "resize": self.resize,
            "scale": INPUT_SCALE,
            "layout": "NCHW float32",
            "standardise": None if self.mean is None else {
                "mean": list(self.mean), "std": list(self.std or ()),
                "where": "the model's first layer (inside the weights and the portable "
                         "file): do not apply it again",
            },
        }

    @classmethod
    def from_dict(cls, values: Any, where: str) -> Preprocessing:
        """Read ``to_dict``'s output back; anything else is a one-line ``UserError``."""
        try:
            height, width = (int(v) for v in values["size"])
            channels = int(values["channels"])
            resize = values["resize"]
            standardise = values.get("standardise")
            mean = std = None
            if standardise is not None:
                mean = tuple(float(v) for v in standardise["mean"])
                std = tuple(float(v) for v in standardise["std"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{where}: 'preprocessing' is not what cnnsearch train writes "
                            "(size, channels, resize, standardise)") from None
        if channels not in (1, 3) or height < 1 or width < 1:
            raise UserError(f"{where}: 'preprocessing' has {channels} channels of "
                            f"{height}x{width} pixels: expected 1 or 3 channels, at least 1x1")
        if resize not in (RESIZE_PILLOW, RESIZE_TORCH):
            raise UserError(f"{where}: 'preprocessing.resize' must be {RESIZE_PILLOW} or "
                            f"{RESIZE_TORCH}, got {resize!r}")
        return cls(channels, height, width, resize, mean, std)

    def load(self, path: Path) -> torch.Tensor:
        """One image file as the model's uint8 C x H x W input (steps 1-2); a file that is
        not an image, or too small to be one of the model's, is a one-line ``UserError``."""
        try:
            (width, height), _ = image_header(path)
            low_width, low_height = self.min_size
            if width < low_width or height < low_height:
                raise UserError(f"image {path} is {width}x{height} pixels: too small for a "
                                f"model of {self.width}x{self.height} inputs (at least "
                                f"{low_width}x{low_height})")
            size = (self.width, self.height)
            if self.resize == RESIZE_PILLOW:
                pixels = decode_image(path, self.mode, size)
            else:
                pixels = decode_image(path, self.mode)
        except DatasetError as error:
            raise UserError(str(error)) from None
        image = torch.from_numpy(pixels.reshape(*pixels.shape[:2], self.channels).copy())
        image = image.permute(2, 0, 1).contiguous()
        if image.shape[1:] != (self.height, self.width):  # RESIZE_TORCH, another size
            image = self.resize_tensor(image[None])[0]
        return image

    def resize_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x h x w images at the model's size, with torch's filter (what the
        tensor datasets use); unchanged when already that size."""
        if images.shape[-2:] == (self.height, self.width):
            return images
        if self.height == self.width:
            return resize_images(images, self.height)
        resized = torch.nn.functional.interpolate(
            images.float(), size=(self.height, self.width), mode="bilinear",
            align_corners=False, antialias=True)
        return resized.round_().clamp_(0, 255).to(torch.uint8)

    @staticmethod
    def inputs(images_uint8: torch.Tensor) -> torch.Tensor:
        """The float input of uint8 images (step 3, on their device)."""
        return normalise(images_uint8)
