"""Where datasets live, and the one place that asks torchvision to fetch them.

The data directory is one setting: the config's ``dataset.data_dir``, else
``$CNNSEARCH_DATA_DIR``, else the per-user cache ``~/.cache/cnnsearch``. Every loader looks
there (Fashion-MNIST also finds Debian's copy when no ``data_dir`` is given) and downloads
there. Downloading is opt-in (``download=True``) so that a search never touches the network by
surprise; every loader funnels through :func:`torchvision_download` so the error for a failed
fetch reads the same everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from data.dataset import DatasetError

DATA_DIR_ENV = "CNNSEARCH_DATA_DIR"


def default_data_dir() -> Path:
    """The data directory when no ``data_dir`` is given: ``$CNNSEARCH_DATA_DIR`` (the Docker
    image sets ``/data``), else the per-user cache ``~/.cache/cnnsearch``."""
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "cnnsearch"


def data_root(data_dir: str | Path | None) -> Path:
    """Where to look and download: ``data_dir`` if given, else :func:`default_data_dir`."""
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def torchvision_download(class_name: str, root: Path, **kwargs: object) -> None:
    """Construct ``torchvision.datasets.<class_name>(root, download=True, **kwargs)``.

    torchvision is imported here, not at module level, so reading local files never pays
    for it and tests can replace the class without a network.
    """
    from torchvision import datasets

    dataset_class = getattr(datasets, class_name)
    root.mkdir(parents=True, exist_ok=True)
    try:
        dataset_class(str(root), download=True, **kwargs)
    except (OSError, RuntimeError) as exc:
        raise DatasetError(f"downloading {class_name} into {root} failed: {exc}") from exc


def not_found_message(name: str, looked_in: list[Path], what: str) -> str:
    """The shared 'could not find it' text: where we looked and how to fix it."""
    places = ", ".join(str(p) for p in looked_in)
    return (
        f"{name}: {what} not found (looked in {places}); set download: true under dataset: "
        f"in the config to fetch it, or dataset.data_dir (or ${DATA_DIR_ENV}) pointing at an "
        "existing copy"
    )
