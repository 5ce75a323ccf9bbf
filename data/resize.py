"""Resize whole uint8 image tensors, for datasets read straight into tensors (IDX, CIFAR).

Folder datasets resize per file with Pillow while decoding; the tensor datasets use torch's
antialiased bilinear filter instead, in chunks (of at most ``_CHUNK_BYTES`` of float copies) so
a 60000-image set never needs a full float copy at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CHUNK = 4096
_CHUNK_BYTES = 256 * 2**20
"""At most this many bytes of float32 working copies per chunk (input and output)."""


def _chunk(images: torch.Tensor, size: int) -> int:
    """Images per chunk: up to ``_CHUNK``, fewer when they are large."""
    channels, height, width = images.shape[1:]
    per_image = 4 * int(channels) * (int(height) * int(width) + size * size)
    return max(1, min(_CHUNK, _CHUNK_BYTES // max(per_image, 1)))


def resize_working_bytes(images: torch.Tensor, size: int) -> int:
    """Memory ``resize_images`` needs besides its uint8 output: one chunk's float copies."""
    channels, height, width = images.shape[1:]
    chunk = min(_chunk(images, size), max(len(images), 1))
    return chunk * 4 * int(channels) * (int(height) * int(width) + size * size) * 2


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NCHW -> uint8 N x C x size x size; returned unchanged when already that size."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    step = _chunk(images, size)
    for start in range(0, len(images), step):
        chunk = images[start : start + step].float()
        resized = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        out[start : start + step] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out
