"""cnnsearch: LR-range-test-driven hyperparameter search for image-classification CNNs."""

from search.method.pruner import LRRTPruner

__all__ = ["LRRTPruner"]
