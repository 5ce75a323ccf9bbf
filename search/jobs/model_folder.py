"""What ``cnnsearch train`` writes into its ``--out`` folder once its runs are trained and
their weights saved: the manifest (``model.json``), a few evaluated images to check portable
files with (``check_images.npy``), the model card (``model_card.json`` and ``.html``) and the
portable file.

The card is computed from the weights as read back from disk through ``build_model``, the
loader ``predict`` uses, and with its batching (``logits_of``): what the card says about an
image is what ``predict`` will say about it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from data import ImageDataset
from search.trained.card_data import CARD_HTML, CARD_JSON, card_data
from search.trained.inference import logits_of
from search.trained.manifest import Manifest, build_model
from search.trained.portable import PortableError, add_portable, write_check_images


def evaluated_split(dataset: ImageDataset) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The split the card is about: the test split, else (``split: thesis``) validation."""
    if dataset.test_images is not None and dataset.test_labels is not None:
        return "test", dataset.test_images, dataset.test_labels
    return "validation", dataset.val_images, dataset.val_labels


def write_card(manifest: Manifest, dataset: ImageDataset,
               histories: dict[int, list[dict[str, Any]]], device: torch.device
               ) -> dict[str, Any]:
    """``model_card.json`` and ``model_card.html`` of the manifest's selected run."""
    split, images, labels = evaluated_split(dataset)
    _, model = build_model(manifest)
    logits = logits_of(model, images, batch_size=manifest.batch_size, device=device)
    card = card_data(manifest, histories, labels, logits, split)
    (manifest.folder / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n",
                                             encoding="utf-8")
    from search.views.model_card import build_model_card  # plotly: only when drawing

    wrong = [images[entry["index"]].numpy() for entry in card["confidently_wrong"]]
    (manifest.folder / CARD_HTML).write_text(build_model_card(card, wrong), encoding="utf-8")
    return card


def finish_folder(manifest: Manifest, dataset: ImageDataset,
                  histories: dict[int, list[dict[str, Any]]], device: torch.device,
                  portable: str | None, warn: Callable[[str], None]) -> Manifest:
    """Card, check images and portable file of a trained folder, then its manifest. A
    portable file that cannot be made is a warning (``warn``), not a failure: the weights
    and the card stand, and ``cnnsearch package`` can try again or another format."""
    manifest.write()  # first: build_model reads the folder through it
    write_card(manifest, dataset, histories, device)
    sample = write_check_images(manifest, evaluated_split(dataset)[1])
    if portable is not None:
        try:
            manifest, _ = add_portable(manifest, portable, sample=sample)
        except PortableError as error:
            warn(f"warning: {error}; the weights and the card are written: try cnnsearch "
                 f"package --model {manifest.folder} --format torch-export")
    manifest.write()
    return manifest
