"""Hundreds of lightweight workers on one PostgreSQL through ``cnnsearch proxy``
(``python -m benchmarks.scale.run``)."""
