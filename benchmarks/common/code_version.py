"""A hash of the code a benchmark's measurements depend on, recorded with every result so
that results measured by other code are never merged with new ones (``--reuse``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURED_CODE = ("search", "models", "data", "benchmarks/common", "benchmarks/replay",
                 "benchmarks/strategies")
"""Every module a search's result depends on: the method and training, the data path, and
the benchmark's own strategies."""


def code_hash(root: Path = ROOT) -> str:
    """SHA-256 (16 hex digits) of the Python sources under ``MEASURED_CODE``, by path."""
    digest = hashlib.sha256()
    for folder in MEASURED_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
