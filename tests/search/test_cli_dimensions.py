"""Issue 12's dimensions through the real CLI on Fashion-MNIST subsets: one range test per
batch sampling strategy and per family (``cnnsearch lrrt --set``), a multi-objective search
with its report and ``export --pareto``, and seed 002's exported recipe retrained."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from search.record import TrialRecord
from tests.conftest import ROOT, needs_fashion_mnist, run_cli, tiny_config, write_config

pytestmark = needs_fashion_mnist


@pytest.fixture(scope="module")
def lrrt_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of range test, so a loss-based strategy samples after its burn-in."""
    folder = tmp_path_factory.mktemp("lrrt")
    config = tiny_config(study="dims")
    config["lrrt"]["epochs"] = 2
    return write_config(folder / "dims.yaml", config)


def range_test(config: Path, out: Path, *assignments: str) -> dict:
    sets = [arg for assignment in assignments for arg in ("--set", assignment)]
    result = run_cli("lrrt", "--config", str(config), *sets, "--out", str(out),
                     "--device", "cpu", cwd=out.parent)
    assert result.returncode == 0, result.stderr
    fixed = result.stdout.split("fixed by --set: ")[1].split(";")[0].split(", ")
    assert sorted(fixed) == sorted(assignments)  # in the space's order
    written = sorted(out.glob("lrrt-*.json"))
    assert len(written) == 1 and written[0].with_suffix(".html").exists()
    return {"name": written[0].stem.removeprefix("lrrt-"),
            "curve": json.loads(written[0].read_text()), "stdout": result.stdout}


def test_lrrt_runs_each_sampling_strategy(lrrt_config: Path, tmp_path: Path) -> None:
    losses = {}
    for strategy in ("uniform", "obs", "adaptive"):
        found = range_test(lrrt_config, tmp_path / strategy, f"sampling={strategy}")
        assert found["name"] == "B1FL2Adam"
        losses[strategy] = found["curve"]["curve"]["losses"]
    assert losses["obs"] != losses["uniform"] != losses["adaptive"]


@pytest.mark.parametrize(("family", "name"), [("resnet18", "ResNet18W4Adam"),
                                              ("lenet5", "LeNet5Adam"),
                                              ("vgg", "VGG11W4Adam")])
def test_lrrt_runs_each_family(lrrt_config: Path, tmp_path: Path, family: str,
                               name: str) -> None:
    found = range_test(lrrt_config, tmp_path / family, f"architecture={family}", "filters=4")
    assert found["name"] == name
    assert f"{name}: best smoothed accuracy" in found["stdout"]


def test_lrrt_set_refuses_what_the_space_refuses(lrrt_config: Path, tmp_path: Path) -> None:
    result = run_cli("lrrt", "--config", str(lrrt_config), "--set", "sampling=importance",
                     "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "space.sampling" in result.stderr


@pytest.fixture(scope="module")
def pareto(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A multi-objective search of 8 trials whose space holds designs that diverge."""
    folder = tmp_path_factory.mktemp("pareto")
    config = tiny_config(study="pareto", n_trials=8, objectives=["val_accuracy", "n_params"])
    config["space"].update(filters=[2, 4, 8], optimizer=["adam"],
                           lr_range=[[1.0e-3, 3.0e-2], [3.0, 10.0]])
    config["pruner"].update(min_usable_fraction=0.5)  # a ramp that blows up early: diverged
    path = write_config(folder / "pareto.yaml", config)
    url = f"sqlite:///{folder / 'study.db'}"
    result = run_cli("search", "--config", str(path), "--storage", url, "--artifact-dir",
                     str(folder / "artifacts"), "--device", "cpu", cwd=folder)
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "url": url, "stdout": result.stdout,
            "study": optuna.load_study(study_name="pareto", storage=url)}


def test_a_multi_objective_search_rejects_at_the_gate_and_scores_both(pareto: dict) -> None:
    study = pareto["study"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", "n_params"]
    records = [TrialRecord.from_frozen(t) for t in study.trials]
    assert len(records) == 8
    rejected = [r for r in records if r.state == TrialState.PRUNED]
    assert rejected and all(r.rejected_at_lrrt for r in rejected)
    complete = [r for r in records if r.state == TrialState.COMPLETE]
    assert complete and all(r.values[1] == r.n_params for r in complete)
    assert "on the Pareto front" in pareto["stdout"]
    assert "--pareto -o best.yaml" in pareto["stdout"]


def test_the_report_shows_the_pareto_front(pareto: dict) -> None:
    out = pareto["folder"] / "report.html"
    result = run_cli("report", "--study", "pareto", "--storage", pareto["url"], "-o", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert '<section id="pareto">' in page and 'id="pareto-front"' in page
    for trial in pareto["study"].best_trials:
        assert f'<tr data-trial="{trial.number}">' in page.split('<section id="pareto">')[1]


def test_export_pareto_writes_the_front_and_trains(pareto: dict, tmp_path: Path) -> None:
    out = tmp_path / "front.yaml"
    result = run_cli("export", "--study", "pareto", "--storage", pareto["url"], "--pareto",
                     "-o", str(out))
    assert result.returncode == 0, result.stderr
    entries = yaml.safe_load(out.read_text())["configs"]
    front = pareto["study"].best_trials
    assert 1 <= len(entries) <= len(front)
    designs = [json.dumps({k: v for k, v in e["config"].items() if k != "seed"},
                          sort_keys=True) for e in entries]
    assert len(set(designs)) == len(designs)  # each design once
    assert [e["rank"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(set(e["objectives"]) == {"val_accuracy", "n_params"} for e in entries)
    scores = [e["objectives"]["val_accuracy"] for e in entries]
    assert scores == sorted(scores, reverse=True)
    run = run_cli("train", "--from", str(out), "--rank", str(len(entries)), "--epochs", "1",
                  "--out", str(tmp_path / "run"), "--device", "cpu")
    assert run.returncode == 0, run.stderr

    single = run_cli("export", "--study", "dims-none", "--storage", pareto["url"], "--pareto")
    assert single.returncode == 2


def test_seed_002s_recipe_retrains_from_its_export(tmp_path: Path) -> None:
    """configs/seed002-best.export.yaml as shipped, on a Fashion-MNIST subset and a narrow
    ResNet-18 so that an epoch takes seconds: the recipe (ResNet-18, ReLU6, SGD momentum 0.6,
    batch 64, exponential decay from LR 0.05) runs through `cnnsearch train`."""
    document = yaml.safe_load((ROOT / "configs" / "seed002-best.export.yaml").read_text())
    config = document["configs"][0]["config"]
    config["dataset"] = {"name": "fashion-mnist", "train_size": 256, "val_size": 128,
                         "split": "thesis"}
    config["architecture"]["filters"] = 4
    path = tmp_path / "seed002.yaml"
    path.write_text(yaml.safe_dump(document))
    out = tmp_path / "run"
    result = run_cli("train", "--from", str(path), "--epochs", "2", "--out", str(out),
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == "ResNet18W4SGD" and summary["schedule"] == "exponential"
    lrs = [epoch["lr"] for epoch in summary["runs"][0]["history"]]
    assert lrs == pytest.approx([0.05 * 0.95, 0.05 * 0.95**2])  # from 0.05, x 0.95 an epoch
    assert summary["config"]["momentum"] == 0.6
    assert summary["config"]["architecture"]["activation"] == "relu6"
