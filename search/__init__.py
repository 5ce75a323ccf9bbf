"""cnnsearch: LR-range-test-driven hyperparameter search for image-classification CNNs."""

from search.pruner import LRRTPruner

__all__ = ["LRRTPruner"]
