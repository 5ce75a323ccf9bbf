"""The one place a dataset is prepared for a search: loaded by name (a data problem becomes a
one-line ``UserError``), checked against the space, and moved to the compute device once.

Every command that trains (``search``, ``worker``, ``lrrt``, ``train``) and the benchmarks
start here, so they see the same split of the same images. Only ``cnnsearch train`` asks for
the test split (``dataset.split: holdout``); the search gets the dataset without it, so no
selection can ever look at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from data import DatasetError, DeviceBatches, ImageDataset, load_dataset
from search.config import DatasetSettings, SearchConfig
from search.config.footprint import check_design_memory, check_space_memory
from search.config.shapes import check_space_shape, check_translate
from search.errors import UserError

if TYPE_CHECKING:
    from search.method.trial_config import TrialConfig


@dataclass
class DataOnDevice:
    """The dataset moved to the device once; train batches are cached per batch size.
    ``test`` is None unless the dataset holds a test split (``load_data(..., test=True)``)."""

    dataset: ImageDataset
    device: torch.device
    eval_batch_size: int
    data_seed: int | None = None
    """The seed that picked these images (``load_data``); None for a dataset built in
    memory. Every trial records it (``TrialConfig.data_seed``)."""

    def __post_init__(self) -> None:
        self._train: dict[int, DeviceBatches] = {}
        self.val = DeviceBatches(
            self.dataset.val_images, self.dataset.val_labels,
            batch_size=self.eval_batch_size, device=self.device, shuffle=False, seed=0,
            channels_last=self.channels_last,
        )
        self.test: DeviceBatches | None = None
        if self.dataset.test_images is not None and self.dataset.test_labels is not None:
            self.test = DeviceBatches(
                self.dataset.test_images, self.dataset.test_labels,
                batch_size=self.eval_batch_size, device=self.device, shuffle=False, seed=0,
                channels_last=self.channels_last,
            )

    @property
    def channels_last(self) -> bool:
        """Images (and models, ``search.method.recipe.build_model``) are ``channels_last``
        on CUDA, where cuDNN's convolutions (and tensor cores) run fastest in NHWC; on the
        CPU they stay NCHW."""
        return torch.device(self.device).type == "cuda"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def train(self, batch_size: int, seed: int) -> DeviceBatches:
        """The training batches of this size, reshuffled from ``seed``."""
        if batch_size not in self._train:
            self._train[batch_size] = DeviceBatches(
                self.dataset.train_images, self.dataset.train_labels,
                batch_size=batch_size, device=self.device, shuffle=True, seed=seed,
                channels_last=self.channels_last,
            )
        batches = self._train[batch_size]
        batches.seed = seed
        return batches


def load_data(settings: DatasetSettings, seed: int, *, test: bool = False) -> ImageDataset:
    """The dataset the settings name, split (``settings.split``) and subset from ``seed``;
    its test split only with ``test`` (``cnnsearch train``), never for a search."""
    try:
        dataset = load_dataset(
            settings.name, data_dir=settings.data_dir, download=settings.download, seed=seed,
            train_size=settings.train_size, val_size=settings.val_size,
            image_size=settings.image_size, split=settings.split,
            val_fraction=settings.val_fraction, test_fraction=settings.test_fraction,
        )
    except DatasetError as error:
        raise UserError(str(error)) from None
    return dataset if test else dataset.without_test()


def check_space_fits(config: SearchConfig, dataset: ImageDataset) -> None:
    """Refuse designs that cannot be built for this input, a translation as wide as the
    images, and a space whose data or largest design would not fit in memory, before any
    trial runs."""
    check_space_shape(config, dataset.input_shape)
    check_space_memory(config, dataset.input_shape, dataset.num_classes,
                       len(dataset.train_labels), len(dataset.val_labels))


def check_design_fits(config: TrialConfig, dataset: ImageDataset) -> None:
    """Refuse one design (``cnnsearch train``) whose translation is as wide as the images,
    or whose data or training would not fit in memory."""
    check_translate(config.translate, dataset.input_shape, "translate")
    n_test = len(dataset.test_labels) if dataset.test_labels is not None else 0
    check_design_memory(config.architecture, config.batch_size, config.train.eval_batch_size,
                        dataset.input_shape, dataset.num_classes, len(dataset.train_labels),
                        len(dataset.val_labels), n_test)


def prepare_data(config: SearchConfig, device: torch.device,
                 data_seed: int | None = None) -> DataOnDevice:
    """Load, check against the space, and move to ``device``. ``data_seed`` picks the
    images: a study's own (``search.service.study.study_data_seed``); by default the
    config's seed (no study: ``cnnsearch lrrt``)."""
    seed = config.seed if data_seed is None else data_seed
    dataset = load_data(config.dataset, seed)
    check_space_fits(config, dataset)
    return DataOnDevice(dataset, device, config.train.eval_batch_size, data_seed=seed)
