"""EuroSAT RGB: 27000 Sentinel-2 64x64 JPEG tiles in 10 land-use classes.

It ships as a plain class-per-folder tree without a split, so it is read with the image-folder
reader and split per class with the run's seed: 80/20 train/validation as in the thesis, or
train/validation/test when ``test_fraction`` is given (``load_dataset``'s default, 70/15/15).
The class set is checked because a half-extracted archive otherwise loads as a smaller,
silently different dataset.
"""

from __future__ import annotations

from pathlib import Path

from data.dataset import DatasetError, ImageDataset
from data.download import data_root, not_found_message, torchvision_download
from data.imagefolder import VAL_FRACTION, load_image_folder

EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)


def _has_classes(directory: Path) -> bool:
    return directory.is_dir() and any((directory / name).is_dir() for name in EUROSAT_CLASSES)


def _candidates(root: Path, explicit: bool) -> list[Path]:
    """torchvision's ``<root>/eurosat/2750``, the bare ``<root>/2750``, or ``data_dir`` itself."""
    candidates = [root / "eurosat" / "2750", root / "2750"]
    return candidates + [root] if explicit else candidates


def _check_classes(directory: Path) -> None:
    present = {p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing = [name for name in EUROSAT_CLASSES if name not in present]
    extra = sorted(present - set(EUROSAT_CLASSES))
    if missing or extra:
        raise DatasetError(
            f"eurosat: {directory} does not hold the 10 EuroSAT classes "
            f"(missing: {', '.join(missing) or 'none'}; unexpected: {', '.join(extra) or 'none'})"
        )


def load_eurosat(
    data_dir: str | Path | None = None,
    download: bool = False,
    *,
    seed: int = 0,
    image_size: int | None = None,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float | None = None,
) -> ImageDataset:
    """EuroSAT RGB with a seeded, per-class train/validation(/test) split (by default the
    thesis' 80/20 train/validation)."""
    explicit = data_dir is not None
    root = data_root(data_dir)
    candidates = _candidates(root, explicit)
    directory = next((c for c in candidates if _has_classes(c)), None)
    if directory is None:
        if not download:
            raise DatasetError(not_found_message("eurosat", candidates, "the 2750/ image folder"))
        torchvision_download("EuroSAT", root)
        directory = root / "eurosat" / "2750"
        if not _has_classes(directory):
            raise DatasetError(f"eurosat: download finished but {directory} has no classes")
    _check_classes(directory)
    return load_image_folder(directory, name="eurosat", seed=seed, image_size=image_size,
                             val_fraction=val_fraction, test_fraction=test_fraction)
