"""What a trial scores: the validation accuracy, and in a multi-objective search one more
objective measured on the trained model."""

from __future__ import annotations

from models import count_parameters
from search.method.objective_metrics import (
    OBJECTIVES,
    PRIMARY_OBJECTIVE,
    directions,
    objective_values,
)


def test_a_single_objective_is_the_accuracy_itself(tiny_model, tiny_data) -> None:
    _, val = tiny_data()
    assert objective_values((PRIMARY_OBJECTIVE,), 0.75, tiny_model(), val) == 0.75
    assert directions((PRIMARY_OBJECTIVE,)) == ["maximize"]


def test_n_params_and_latency_are_measured_on_the_model(tiny_model, tiny_data) -> None:
    _, val = tiny_data()
    model = tiny_model()
    assert objective_values(("val_accuracy", "n_params"), 0.5, model, val) == (
        0.5, float(count_parameters(model)))
    accuracy, latency = objective_values(("val_accuracy", "latency_ms"), 0.5, model, val)
    assert accuracy == 0.5 and 0.0 < latency < 10_000.0
    assert model.training  # its mode is restored
    assert directions(("val_accuracy", "latency_ms")) == ["maximize", "minimize"]
    assert set(OBJECTIVES) == {"val_accuracy", "n_params", "latency_ms"}

