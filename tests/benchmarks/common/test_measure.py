"""The measured grid of LRs the replay table and the oracle share (benchmarks.common.measure)."""

from __future__ import annotations


def test_the_grid_widens_past_an_edge_until_its_best_is_interior() -> None:
    from benchmarks.common.measure import WIDEST, widened_grid

    def peaked_at(peak: int):  # accuracy falls off on both sides of ``peak``
        return lambda index: {"history": [1.0 - abs(index - peak) / 100]}

    measured, top, span = widened_grid((0, 4), peaked_at(-3))
    assert top == -3 and span == (-4, 4) and sorted(measured) == list(range(-4, 5))
    measured, top, span = widened_grid((0, 4), peaked_at(2))
    assert top == 2 and span == (0, 4)  # interior at once: nothing more is trained
    _, top, span = widened_grid((0, 4), peaked_at(100))
    assert span == (0, WIDEST[1]) and top == WIDEST[1]  # the widest grid stops it
