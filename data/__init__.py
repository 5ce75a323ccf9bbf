"""Datasets for cnnsearch: loaders by name, and device-resident mini-batches."""

from __future__ import annotations

from data.dataset import DatasetError, ImageDataset
from data.device_batches import DeviceBatches, normalise
from data.registry import DATASET_NAMES, load_dataset, validate_dataset_name

__all__ = [
    "DATASET_NAMES",
    "DatasetError",
    "DeviceBatches",
    "ImageDataset",
    "load_dataset",
    "normalise",
    "validate_dataset_name",
]
