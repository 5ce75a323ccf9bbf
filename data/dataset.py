"""The in-memory dataset every loader returns: uint8 images, int64 labels, class names.

Loaders only read files; the train/validation/test protocol (``data.registry``), subsetting,
normalisation and batching live elsewhere so that a new format is one small module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch


class DatasetError(ValueError):
    """A dataset cannot be loaded: unknown name, missing or malformed files."""


@dataclass(frozen=True)
class ImageDataset:
    """Train, validation and (optionally) test splits held as whole tensors.

    Images are uint8 in NCHW layout; labels are int64 class indices in ``[0, num_classes)``.
    The validation split is what a search selects designs on; the test split, when there is
    one, is kept apart for the final figures of ``cnnsearch train`` and never seen by a search.
    A loader of a dataset published with a train/test split (CIFAR, the MNIST family) returns
    that split as train/val, as the thesis used it; ``data.registry.load_dataset`` decides,
    from ``split``, whether it stays so or becomes the test split.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    source: Path | None = None
    """The folder the images were read from (None: built in memory)."""
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    """The held-out test split; None when none is kept (``split: thesis``)."""

    @property
    def has_test(self) -> bool:
        return self.test_images is not None and self.test_labels is not None

    def without_test(self) -> ImageDataset:
        """The same train and validation splits with no test split: what a search gets."""
        return replace(self, test_images=None, test_labels=None)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        channels, height, width = self.train_images.shape[1:]
        return int(channels), int(height), int(width)
