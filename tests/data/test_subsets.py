"""Stratified subsets (exact size, proportional, seeded) and per-class train/val splits."""

from __future__ import annotations

import pytest
import torch

from data.dataset import DatasetError
from data.subsets import stratified_partition, stratified_split, stratified_subset


def _labels(counts: list[int], class_ids: list[int] | None = None) -> torch.Tensor:
    ids = class_ids if class_ids is not None else list(range(len(counts)))
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in zip(ids, counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(99))]


def _shares(labels: torch.Tensor, index: torch.Tensor) -> list[int]:
    return torch.bincount(labels[index], minlength=int(labels.max()) + 1).tolist()


def test_subset_is_exact_and_proportional() -> None:
    labels = _labels([50, 30, 20])
    index = stratified_subset(labels, 10, seed=0)
    assert index.dtype == torch.int64
    assert len(index) == 10
    assert _shares(labels, index) == [5, 3, 2]


def test_largest_remainder_breaks_ties_by_class_order() -> None:
    labels = _labels([7, 7, 6])  # quotas 3.5, 3.5, 3.0
    assert _shares(labels, stratified_subset(labels, 10, seed=0)) == [4, 3, 3]


def test_largest_remainder_gives_leftovers_to_biggest_fractions() -> None:
    labels = _labels([45, 35, 20])  # size 7: quotas 3.15, 2.45, 1.4
    assert _shares(labels, stratified_subset(labels, 7, seed=0)) == [3, 3, 1]


def test_every_class_keeps_at_least_one_sample() -> None:
    labels = _labels([98, 1, 1])
    assert _shares(labels, stratified_subset(labels, 3, seed=0)) == [1, 1, 1]
    assert _shares(labels, stratified_subset(labels, 5, seed=0)) == [3, 1, 1]


def test_non_contiguous_class_ids() -> None:
    labels = _labels([10, 10, 20], class_ids=[3, 7, 9])
    index = stratified_subset(labels, 8, seed=1)
    assert torch.bincount(labels[index]).tolist()[3::2] == [2, 0, 2, 4]


def test_indices_are_sorted_unique_and_in_range() -> None:
    labels = _labels([40, 25, 35])
    index = stratified_subset(labels, 33, seed=5)
    assert torch.equal(index, torch.sort(index).values)
    assert len(torch.unique(index)) == 33
    assert int(index.min()) >= 0 and int(index.max()) < 100


def test_same_seed_same_subset_other_seed_other_subset() -> None:
    labels = _labels([100, 100])
    first = stratified_subset(labels, 20, seed=7)
    assert torch.equal(first, stratified_subset(labels, 20, seed=7))
    assert not torch.equal(first, stratified_subset(labels, 20, seed=8))


def test_full_size_and_none_return_everything() -> None:
    labels = _labels([3, 4])
    assert torch.equal(stratified_subset(labels, None, seed=0), torch.arange(7))
    assert torch.equal(stratified_subset(labels, 7, seed=0), torch.arange(7))


def test_random_configurations_stay_exact_and_near_proportional() -> None:
    rng = torch.Generator().manual_seed(0)
    for trial in range(200):
        k = int(torch.randint(2, 12, (1,), generator=rng))
        counts = torch.randint(1, 60, (k,), generator=rng).tolist()
        size = int(torch.randint(k, sum(counts) + 1, (1,), generator=rng))
        labels = _labels(counts)
        shares = _shares(labels, stratified_subset(labels, size, seed=trial))
        assert sum(shares) == size
        assert all(1 <= s <= n for s, n in zip(shares, counts))
        if all(size * n / sum(counts) >= 1 for n in counts):  # no minimum-one correction
            assert all(abs(s - size * n / sum(counts)) < 1 for s, n in zip(shares, counts))


def test_subset_larger_than_available() -> None:
    with pytest.raises(DatasetError, match="subset size 11 exceeds the 10 samples available"):
        stratified_subset(_labels([5, 5]), 11, seed=0)


def test_subset_smaller_than_class_count() -> None:
    with pytest.raises(DatasetError, match="subset size 2 is smaller than the 3 classes present"):
        stratified_subset(_labels([5, 5, 5]), 2, seed=0)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_subset_size_must_be_a_positive_integer(size: object) -> None:
    with pytest.raises(DatasetError, match="subset size must be a positive integer"):
        stratified_subset(_labels([5, 5]), size, seed=0)  # type: ignore[arg-type]


def test_labels_must_be_1d_integers() -> None:
    with pytest.raises(DatasetError, match="labels must be a 1-d integer tensor"):
        stratified_subset(torch.zeros(4, 2, dtype=torch.int64), 2, seed=0)
    with pytest.raises(DatasetError, match="labels must be a 1-d integer tensor"):
        stratified_subset(torch.zeros(4), 2, seed=0)


def test_split_is_per_class_disjoint_and_complete() -> None:
    labels = _labels([10, 5, 7, 2])
    train, val = stratified_split(labels, 0.2, seed=0)
    assert _shares(labels, val) == [2, 1, 1, 1]
    assert _shares(labels, train) == [8, 4, 6, 1]
    assert torch.equal(torch.sort(torch.cat([train, val])).values, torch.arange(24))


def test_split_is_seeded() -> None:
    labels = _labels([30, 30])
    assert torch.equal(stratified_split(labels, 0.2, 1)[1], stratified_split(labels, 0.2, 1)[1])
    assert not torch.equal(
        stratified_split(labels, 0.2, 1)[1], stratified_split(labels, 0.2, 2)[1]
    )


def test_split_rejects_singleton_classes_and_bad_fractions() -> None:
    with pytest.raises(DatasetError, match="class 1 has 1 sample"):
        stratified_split(_labels([4, 1]), 0.2, seed=0)
    with pytest.raises(DatasetError, match=r"fractions must lie in \(0, 1\)"):
        stratified_split(_labels([4, 4]), 1.0, seed=0)
    with pytest.raises(DatasetError, match="empty"):
        stratified_split(torch.zeros(0, dtype=torch.int64), 0.2, seed=0)


def test_partition_is_per_class_disjoint_complete_and_seeded() -> None:
    labels = _labels([20, 10, 3])
    train, val, test = stratified_partition(labels, (0.15, 0.15), seed=0)
    assert _shares(labels, val) == [3, 2, 1]
    assert _shares(labels, test) == [3, 2, 1]
    assert _shares(labels, train) == [14, 6, 1]
    assert torch.equal(torch.sort(torch.cat([train, val, test])).values, torch.arange(33))
    again = stratified_partition(labels, (0.15, 0.15), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(again, (train, val, test)))
    assert not torch.equal(stratified_partition(labels, (0.15, 0.15), seed=1)[1], val)


def test_two_way_partition_is_the_train_validation_split() -> None:
    """The thesis' folder split (80/20) draws the same images as before the test part
    existed."""
    labels = _labels([13, 9, 4])
    assert all(torch.equal(a, b) for a, b in zip(stratified_partition(labels, (0.2,), 3),
                                                  stratified_split(labels, 0.2, 3)))


def test_partition_needs_one_sample_per_part_and_room_to_train() -> None:
    with pytest.raises(DatasetError, match="class 1 has 2 samples; a train/validation/test "
                       "split needs at least 3 per class"):
        stratified_partition(_labels([5, 2]), (0.2, 0.2), seed=0)
    with pytest.raises(DatasetError, match="sum must be below 1"):
        stratified_partition(_labels([5, 5]), (0.5, 0.5), seed=0)
    with pytest.raises(DatasetError, match="at least one"):
        stratified_partition(_labels([5, 5]), (), seed=0)
