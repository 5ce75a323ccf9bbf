"""The in-memory dataset every loader returns: uint8 images, int64 labels, class names.

Loaders only read files; subsetting, normalisation and batching live elsewhere so that a
new format is one small module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


class DatasetError(ValueError):
    """A dataset cannot be loaded: unknown name, missing or malformed files."""


@dataclass(frozen=True)
class ImageDataset:
    """Train and validation splits held as whole tensors.

    Images are uint8 in NCHW layout; labels are int64 class indices in ``[0, num_classes)``.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    source: Path | None = None
    """The folder the images were read from (None: built in memory)."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        channels, height, width = self.train_images.shape[1:]
        return int(channels), int(height), int(width)
