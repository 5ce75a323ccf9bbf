"""Stratified index sets: class-proportional subsets and per-class train/validation(/test)
splits.

Shrinking a dataset for a quick search must keep its class balance, or trials on the subset
rank configurations differently from trials on the full data. Everything is seeded and uses
CPU generators, so the same seed picks the same samples on every machine.
"""

from __future__ import annotations

import math

import torch

from data.dataset import DatasetError


def _class_members(labels: torch.Tensor) -> list[torch.Tensor]:
    """Indices of each class present in ``labels``, classes in ascending order."""
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise DatasetError(
            f"labels must be a 1-d integer tensor, got {labels.dtype} "
            f"with shape {tuple(labels.shape)}"
        )
    labels = labels.cpu()
    return [torch.nonzero(labels == c).flatten() for c in torch.unique(labels).tolist()]


def _allocate(counts: list[int], size: int) -> list[int]:
    """Largest-remainder apportionment of ``size`` over ``counts``, at least one per class."""
    total = sum(counts)
    # Integer arithmetic: quota = size * count / total exactly, no float ties to misjudge.
    shares = [size * count // total for count in counts]
    remainders = [size * count % total for count in counts]
    # Hand out what flooring left over, biggest fractional part first (ties: lower class).
    order = sorted(range(len(counts)), key=lambda c: (-remainders[c], c))
    for c in order[: size - sum(shares)]:
        shares[c] += 1
    # A rare class may round to zero; take its one sample from the largest share.
    for c, share in enumerate(shares):
        if share == 0:
            donor = max(range(len(shares)), key=lambda d: (shares[d], -d))
            shares[donor] -= 1
            shares[c] = 1
    return shares


def stratified_subset(labels: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """Indices (ascending, int64) of exactly ``size`` samples, classes kept in proportion.

    ``size=None`` means everything. Every class present keeps at least one sample, so ``size``
    must be at least the number of classes and at most the number of samples.
    """
    members = _class_members(labels)
    total = len(labels)
    if size is None:
        return torch.arange(total, dtype=torch.int64)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise DatasetError(f"subset size must be a positive integer, got {size!r}")
    if size > total:
        raise DatasetError(f"subset size {size} exceeds the {total} samples available")
    if size < len(members):
        raise DatasetError(
            f"subset size {size} is smaller than the {len(members)} classes present; "
            f"each class needs at least one sample"
        )
    generator = torch.Generator().manual_seed(seed)
    shares = _allocate([len(m) for m in members], size)
    chosen = [m[torch.randperm(len(m), generator=generator)[:k]] for m, k in zip(members, shares)]
    return torch.sort(torch.cat(chosen)).values


def stratified_split(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (train, val), taking ``val_fraction`` of every class (rounded).

    Each class keeps at least one sample on each side, so every class needs two or more.
    Both index tensors are ascending.
    """
    train, val = stratified_partition(labels, (val_fraction,), seed)
    return train, val


_PART_NAMES = ("train", "validation", "test")


def stratified_partition(
    labels: torch.Tensor, fractions: tuple[float, ...], seed: int
) -> tuple[torch.Tensor, ...]:
    """Split indices into (train, part 1, part 2, ...), part ``k`` taking ``fractions[k]`` of
    every class (rounded; e.g. ``(0.15, 0.15)`` for train/validation/test 70/15/15).

    Each class keeps at least one sample in every part and in train, so every class needs
    ``len(fractions) + 1`` or more. Every index tensor is ascending. The parts are cut from
    the front of one seeded shuffle per class, so the first part for a seed does not depend
    on how many parts follow it.
    """
    if not fractions:
        raise DatasetError("a partition needs at least one held-out fraction")
    for fraction in fractions:
        if not 0.0 < fraction < 1.0:
            raise DatasetError(f"held-out fractions must lie in (0, 1), got {fraction}")
    if sum(fractions) >= 1.0:
        raise DatasetError(f"held-out fractions {', '.join(map(str, fractions))} leave no "
                           "training data: their sum must be below 1")
    groups = _class_members(labels)
    if not groups:
        raise DatasetError("cannot split an empty label set")
    parts = len(fractions) + 1
    names = "/".join(_PART_NAMES[:parts]) if parts <= len(_PART_NAMES) else f"{parts}-way"
    generator = torch.Generator().manual_seed(seed)
    chosen: list[list[torch.Tensor]] = [[] for _ in range(parts)]
    for members in groups:
        count = len(members)
        if count < parts:
            raise DatasetError(
                f"class {int(labels[int(members[0])])} has {count} sample"
                f"{'' if count == 1 else 's'}; a {names} split needs at least {parts} per class"
            )
        shuffled = members[torch.randperm(count, generator=generator)]
        start, left = 0, count
        for index, fraction in enumerate(fractions):
            later = len(fractions) - index - 1  # parts still to fill after this one
            size = min(max(math.floor(count * fraction + 0.5), 1), left - 1 - later)
            chosen[index + 1].append(shuffled[start:start + size])
            start, left = start + size, left - size
        chosen[0].append(shuffled[start:])
    return tuple(torch.sort(torch.cat(part)).values for part in chosen)
