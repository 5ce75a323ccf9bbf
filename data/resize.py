"""Resize whole uint8 image tensors, for datasets read straight into tensors (IDX, CIFAR).

Folder datasets resize per file with Pillow while decoding; the tensor datasets use torch's
antialiased bilinear filter instead, in chunks so a 60000-image set never needs a full float
copy at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CHUNK = 4096


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NCHW -> uint8 N x C x size x size; returned unchanged when already that size."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    for start in range(0, len(images), _CHUNK):
        chunk = images[start : start + _CHUNK].float()
        resized = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        out[start : start + _CHUNK] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out
