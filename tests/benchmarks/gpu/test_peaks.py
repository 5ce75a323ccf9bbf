"""Card peaks (``benchmarks.gpu.peaks``): the datasheet table by card name, and a measured
matrix-product peak."""

from __future__ import annotations

import pytest
import torch

from benchmarks.gpu.peaks import half_precision, measured_matmul_tflops, table_peak


@pytest.mark.parametrize(("name", "bf16"), [
    ("NVIDIA H100 80GB HBM3", 989.4),
    ("NVIDIA H100 PCIe", 756.0),
    ("NVIDIA H100 NVL", 835.5),
    ("NVIDIA H200", 989.4),
    ("NVIDIA A100-SXM4-80GB", 312.0),
    ("NVIDIA A10", 125.0),  # not mistaken for an A100
    ("NVIDIA L40S", 362.1),
    ("NVIDIA L4", 121.0),
])
def test_cards_are_found_by_name(name: str, bf16: float) -> None:
    peaks = table_peak(name)
    assert peaks is not None and peaks["bf16"] == bf16 and half_precision(peaks) == "bf16"


def test_cards_without_bf16_are_judged_on_fp16_and_unknown_cards_on_nothing() -> None:
    v100 = table_peak("Tesla V100-SXM2-32GB")
    assert v100 == {"fp16": 125.0, "fp32": 15.7} and half_precision(v100) == "fp16"
    assert table_peak("Some Future Accelerator") is None
    assert half_precision(None) == "bf16"


def test_the_measured_peak_is_a_positive_rate() -> None:
    assert measured_matmul_tflops(torch.device("cpu"), torch.float32, seconds=0.2) > 0
