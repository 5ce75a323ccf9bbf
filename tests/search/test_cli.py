"""The CLI end to end, in real processes, on real Fashion-MNIST and a real SQLite storage."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from PIL import Image
from safetensors.torch import load_file

from models import build_cnn
from search.method.trial_config import TrialConfig
from search.record import TrialRecord
from tests.conftest import ROOT, needs_fashion_mnist, run_cli, tiny_config, write_config

pytestmark = needs_fashion_mnist


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real search, shared by the tests that read its study. Its first two trials are
    queued designs, so both outcomes occur whatever the sampler draws after them: one that
    learns this task in its LR range, and Adam over [0.01, 0.1], which stays at chance (the
    thesis' table 4.2)."""
    folder = tmp_path_factory.mktemp("search")
    config = write_config(folder / "tiny.yaml", tiny_config(n_trials=5))
    url = f"sqlite:///{folder / 'study.db'}"
    created = run_cli("create-study", "--study", "tiny", "--config", str(config),
                      "--storage", url, cwd=folder)
    assert created.returncode == 0, created.stderr
    study = optuna.load_study(study_name="tiny", storage=url)
    study.enqueue_trial({"blocks": 1, "filters": 4, "optimizer": "adam",
                         "lr_range": "0.0001-0.01"})
    study.enqueue_trial({"blocks": 2, "filters": 2, "optimizer": "adam",
                         "lr_range": "0.01-0.1"})
    result = run_cli("search", "--config", str(config), "--storage", url,
                     "--artifact-dir", str(folder / "artifacts"), cwd=folder)
    assert result.returncode == 0, result.stderr
    return {"folder": folder, "config": config, "url": url, "stdout": result.stdout}


def json_line(stdout: str) -> dict:
    """The JSON summary line ``cnnsearch train`` prints."""
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


def snapshot(url: str) -> list:
    """Everything a failed command must leave alone."""
    storage = optuna.storages.RDBStorage(url)
    studies = optuna.get_all_study_summaries(storage)
    out = []
    for summary in studies:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out.append((summary.study_name, study.user_attrs, [
            (t.number, t.state, t.values, t.params, t.user_attrs, t.intermediate_values)
            for t in study.trials
        ]))
    return out


def test_search_prints_progress_table_and_next_commands(searched: dict) -> None:
    stdout = searched["stdout"]
    assert stdout.count("[") >= 5 and "[5/5]" in stdout
    assert "trial  config" in stdout and "lrrt acc" in stdout and "lr bounds" in stdout
    assert "cnnsearch export" in stdout and "optuna-dashboard" in stdout
    assert "cnnsearch train" in stdout


def test_study_records_what_each_trial_did(searched: dict) -> None:
    study = optuna.load_study(study_name="tiny", storage=searched["url"])
    assert len(study.trials) == 5
    states = {trial.state for trial in study.trials}
    # both branches below must be exercised, or the test proves nothing about them
    assert {TrialState.PRUNED, TrialState.COMPLETE} <= states, states
    for trial in study.trials:
        record = TrialRecord.from_frozen(trial)
        assert record.config_name.startswith("B")
        assert record.seconds is not None and record.device and record.trial_config
        assert record.lrrt is not None and record.lrrt_curve is None  # in its JSON artifact
        assert record.n_params > 0 and record.lrrt.peak_memory_bytes > 0
        assert record.precision == "fp32"  # train.precision: auto, on the CPU
        assert record.card is None and record.slot is None  # no GPU slot held
        assert trial.intermediate_values[0] == record.lrrt.score
        if trial.state == TrialState.PRUNED:
            assert record.pruned_because is not None and record.pruned_because.reason
        if trial.state == TrialState.COMPLETE:
            assert len(record.val_curve) == 2
            assert trial.value == max(record.val_curve)
            low, high = record.lr_bounds
            assert 0 < low < high
        artifacts = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
        assert sorted(a.artifact_id for a in artifacts) == sorted(
            [record.lrrt_artifact_id, record.lrrt_plot_artifact_id])


def test_stock_optuna_cli_reads_the_study(searched: dict) -> None:
    optuna_cli = Path(sys.executable).with_name("optuna")
    result = subprocess.run(
        [str(optuna_cli), "trials", "--study-name", "tiny", "--storage", searched["url"],
         "-f", "json"], check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    trials = json.loads(result.stdout)
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3, 4]
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_optuna_dashboard_serves_the_study(searched: dict) -> None:
    port = _free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen(
        [str(dashboard), searched["url"], "--port", str(port), "--host", "127.0.0.1",
         "--artifact-dir", str(searched["folder"] / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as reply:
                    assert reply.status == 200
                    studies = json.loads(reply.read())["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert [s["study_name"] for s in studies] == ["tiny"]
        study_id = studies[0]["study_id"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id}") as reply:
            detail = json.loads(reply.read())
        assert len(detail["trials"]) == 5
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_trials_command_prints_the_table(searched: dict) -> None:
    result = run_cli("trials", "--study", "tiny", "--storage", searched["url"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") >= 7 and "5 trials" in result.stdout


def test_export_then_train_round_trips(searched: dict, tmp_path: Path) -> None:
    export = tmp_path / "best.yaml"
    result = run_cli("export", "--study", "tiny", "--storage", searched["url"], "--top", "2",
                     "-o", str(export))
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(export.read_text())
    study = optuna.load_study(study_name="tiny", storage=searched["url"])
    assert document["configs"][0]["trial"] == study.best_trial.number
    assert document["configs"][0]["score"] == study.best_value

    out = tmp_path / "run"
    result = run_cli("train", "--from", str(export), "--rank", "1", "--epochs", "1",
                     "--repeats", "2", "--out", str(out), "--device", "cpu",
                     "--portable", "none")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["repeats"] == 2
    assert [run["seed"] for run in summary["runs"]] == [
        document["configs"][0]["config"]["seed"] + i for i in range(2)
    ]
    assert summary["median_best_val_accuracy"] == pytest.approx(
        float(np.median([run["best_val_accuracy"] for run in summary["runs"]]))
    )
    # the default split: validation carved from the training images, and the official test
    # split (all 10,000 images, never seen by the search) evaluated once per run
    assert document["configs"][0]["config"]["dataset"]["split"] == "holdout"
    assert summary["split"] == "holdout"
    assert summary["images"] == {"train": 400, "val": 200, "test": 10000}
    tests = [run["test_accuracy"] for run in summary["runs"]]
    assert all(0.0 <= value <= 1.0 for value in tests)
    assert all(run["test_loss"] > 0 for run in summary["runs"])
    assert summary["median_test_accuracy"] == pytest.approx(float(np.median(tests)))
    printed = json_line(result.stdout)
    assert printed["median_test_accuracy"] == summary["median_test_accuracy"]
    assert printed["split"] == "holdout"
    assert (f"test accuracy (final weights, 10000 held-out images the search never saw): "
            f"median {summary['median_test_accuracy']:.4f} over 2 run(s)") in result.stdout
    assert result.stdout.count("test acc ") == 2  # one line per run
    config = TrialConfig.from_dict(document["configs"][0]["config"])
    model = build_cnn(config.architecture, (1, 28, 28), 10, seed=0)
    assert summary["runs"][0]["weights"].endswith(".safetensors")
    model.load_state_dict(load_file(out / summary["runs"][0]["weights"]))
    manifest = json.loads((out / "model.json").read_text())
    assert [run["seed"] for run in manifest["runs"]] == [run["seed"] for run in summary["runs"]]
    assert manifest["portable"] == [] and summary["portable"] == []
    assert (out / "model_card.html").is_file()

    as_json = tmp_path / "best.json"
    result = run_cli("export", "--study", "tiny", "--storage", searched["url"],
                     "--format", "json", "-o", str(as_json))
    assert result.returncode == 0 and json.loads(as_json.read_text())["configs"]


def test_train_from_an_export_made_before_the_split_uses_the_thesis_split(
    tmp_path: Path,
) -> None:
    """The legacy fixture's export has no dataset.split: its search validated on the
    official test split, so its retrain does too, and reports no test figure."""
    export = ROOT / "tests" / "fixtures" / "legacy_study" / "export.json"
    assert "split" not in json.loads(export.read_text())["configs"][0]["config"]["dataset"]
    out = tmp_path / "run"
    result = run_cli("train", "--from", str(export), "--epochs", "1", "--out", str(out),
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "thesis" and summary["config"]["dataset"]["split"] == "thesis"
    assert summary["images"] == {"train": 800, "val": 200, "test": 0}
    assert summary["median_test_accuracy"] is None
    assert summary["runs"][0]["test_accuracy"] is None
    assert "no test split (dataset.split: thesis)" in result.stdout
    assert json_line(result.stdout)["median_test_accuracy"] is None
    card = json.loads((out / "model_card.json").read_text())  # on the validation images
    assert card["evaluated_on"] == "validation" and card["images"] == 200
    assert json.loads((out / "model.json").read_text())["portable"][0]["format"] == "onnx"


def test_the_search_never_holds_the_test_split() -> None:
    """prepare_data (every search, worker and lrrt) drops the test split; only
    ``cnnsearch train`` asks for it."""
    from search.config import parse_config
    from search.method.prepared_data import load_data, prepare_data

    config = parse_config(tiny_config())
    data = prepare_data(config, torch.device("cpu"))
    assert data.dataset.test_images is None and data.test is None
    assert len(data.dataset.val_labels) == 200
    with_test = load_data(config.dataset, config.seed, test=True)
    assert with_test.test_labels is not None and len(with_test.test_labels) == 10000
    assert torch.equal(with_test.val_images, data.dataset.val_images)  # the same split
    thesis = parse_config(tiny_config(dataset={"name": "fashion-mnist", "train_size": 400,
                                               "val_size": 200, "split": "thesis"}))
    assert load_data(thesis.dataset, thesis.seed, test=True).test_images is None


def test_an_export_without_split_is_retrained_under_the_thesis_split() -> None:
    from dataclasses import replace

    from search.jobs.retrain import with_export_split

    entry = json.loads((ROOT / "tests" / "fixtures" / "legacy_study" / "export.json")
                       .read_text())["configs"][0]
    config = TrialConfig.from_dict(entry["config"])
    assert config.dataset.split == "holdout"  # what the key's default alone would give
    assert with_export_split(config, entry).dataset.split == "thesis"
    current = replace(config, dataset=replace(config.dataset, split="holdout"))
    written = {"config": current.to_dict()}
    assert with_export_split(current, written) is current


def test_lrrt_command_writes_curve_and_plot(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", tiny_config())
    result = run_cli("lrrt", "--config", str(config), "--set", "blocks=2", "--set", "filters=4",
                     "--set", "optimizer=adam", "--set", "lr_range=[1e-4,1e-2]",
                     "--out", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    curve = json.loads((tmp_path / "out" / "lrrt-B2FL4Adam.json").read_text())
    assert curve["curve"]["lrs"][0] == pytest.approx(1e-4)
    html = (tmp_path / "out" / "lrrt-B2FL4Adam.html").read_text()
    assert "plotly" in html and "smoothed accuracy" in html


def test_imagefolder_dataset_searches(tmp_path: Path) -> None:
    """Any folder of class sub-folders works: two classes told apart by brightness."""
    rng = np.random.default_rng(0)
    for label, (low, high) in {"dark": (0, 90), "light": (160, 255)}.items():
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(40):
            pixels = rng.integers(low, high, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{index}.png")
    config = tiny_config(
        study="folder", n_trials=2,
        dataset={"name": f"imagefolder:{tmp_path / 'images'}"},
        space={"blocks": [2], "filters": [4], "optimizer": ["adam"],
               "lr_range": [[1.0e-4, 1.0e-2]], "batch_size": [16], "fc_units": [16]},
    )
    url = f"sqlite:///{tmp_path / 'folder.db'}"
    result = run_cli("search", "--config", str(write_config(tmp_path / "c.yaml", config)),
                     "--storage", url, "--artifact-dir", "", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="folder", storage=url)
    assert len(study.trials) == 2
    assert all(t.user_attrs["num_classes"] == 2 for t in study.trials)


BAD_CONFIGS = {
    "unknown dataset": (lambda c: c["dataset"].update(name="imagenet"), "unknown dataset"),
    "unknown key": (lambda c: c["space"].update(blokcs=[2]), "space.blokcs"),
    "out of range": (lambda c: c["lrrt"].update(epochs=-1), "lrrt.epochs"),
    "impossible design": (lambda c: c["space"].update(blocks=[6]), "space.blocks"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_exit_2_and_leaves_study_alone(
    searched: dict, tmp_path: Path, case: str
) -> None:
    mutate, expected = BAD_CONFIGS[case]
    config = tiny_config()
    mutate(config)
    before = snapshot(searched["url"])
    result = run_cli("search", "--config", str(write_config(tmp_path / "bad.yaml", config)),
                     "--storage", searched["url"], "--artifact-dir", "")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(searched["url"]) == before


BAD_GPU_OPTIONS = {
    "space key": (["--set", "space.blocks=2"], "the search space is the config file's"),
    "bad precision": (["--set", "train.precision=fp8"], "train.precision"),
    "not key=value": (["--set", "train.precision"], "--set expects key=value"),
    "packing on the cpu": (["--trials-per-gpu", "2", "--device", "cpu"],
                           "--trials-per-gpu packs trials on GPUs"),
    "no gpu to pack": (["--trials-per-gpu", "auto"], "no CUDA GPU is visible"),
}


@pytest.mark.parametrize("case", sorted(BAD_GPU_OPTIONS))
def test_bad_set_and_packing_options_are_one_line_and_touch_no_storage(
        searched: dict, tmp_path: Path, case: str) -> None:
    extra, expected = BAD_GPU_OPTIONS[case]
    if case == "no gpu to pack" and torch.cuda.is_available():
        pytest.skip("a GPU is visible: --trials-per-gpu auto would pack trials on it")
    before = snapshot(searched["url"])
    for command in ("search", "worker"):
        study = ["--study", "tiny"] if command == "worker" else []
        result = run_cli(command, "--config", str(searched["config"]), *study, *extra,
                         "--storage", searched["url"], "--artifact-dir", "")
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert snapshot(searched["url"]) == before


def test_set_overrides_a_key_of_the_range_test(tmp_path: Path) -> None:
    """``lrrt --set train.precision=bf16`` runs the single range test under bf16 autocast;
    a space dimension fixed beside it still is."""
    config = write_config(tmp_path / "tiny.yaml", tiny_config())
    result = run_cli("lrrt", "--config", str(config), "--set", "train.precision=bf16",
                     "--set", "filters=4", "--out", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "fixed by --set: filters=4;" in result.stdout
    assert (tmp_path / "out" / "lrrt-B1FL4Adam.json").exists()


def test_malformed_yaml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nspace: [blocks: 2\n")
    result = run_cli("search", "--config", str(bad), "--storage",
                     f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "malformed YAML" in result.stderr and "line" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_different_config_into_existing_study_is_refused(searched: dict, tmp_path: Path) -> None:
    """The refusal names the keys that differ; the budget and seed may differ."""
    train = dict(tiny_config()["train"], epochs=3)
    config = tiny_config(seed=7, n_trials=9, train=train)
    before = snapshot(searched["url"])
    result = run_cli("search", "--config", str(write_config(tmp_path / "other.yaml", config)),
                     "--storage", searched["url"], "--artifact-dir", "")
    assert result.returncode == 2 and "different configuration" in result.stderr
    assert result.stderr.count("\n") == 1 and "(train.epochs: 2 stored, 3 new)" in result.stderr
    assert snapshot(searched["url"]) == before


def test_another_budget_and_seed_open_the_existing_study(searched: dict, tmp_path: Path) -> None:
    config = write_config(tmp_path / "more.yaml", tiny_config(seed=7, n_trials=50))
    before = snapshot(searched["url"])
    result = run_cli("create-study", "--study", "tiny", "--config", str(config),
                     "--storage", searched["url"], "--artifact-dir", "")
    assert result.returncode == 0, result.stderr
    assert "study 'tiny' ready" in result.stdout
    assert snapshot(searched["url"]) == before


def test_unreachable_storage_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_config())
    result = run_cli("search", "--config", str(config), "--storage",
                     "postgresql://user:s3cret@127.0.0.1:1/nowhere", timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cannot open storage" in result.stderr and "s3cret" not in result.stderr


@pytest.mark.parametrize("content", ["configs: []\n", "not: an export\n", "{{{{", ""])
def test_train_from_a_file_that_is_not_an_export(tmp_path: Path, content: str) -> None:
    source = tmp_path / "x.yaml"
    source.write_text(content)
    result = run_cli("train", "--from", str(source), "--epochs", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "not a cnnsearch export" in result.stderr


def test_missing_study_and_missing_file(searched: dict, tmp_path: Path) -> None:
    result = run_cli("trials", "--study", "nope", "--storage", searched["url"])
    assert result.returncode == 2 and "no study named 'nope'" in result.stderr
    assert "tiny" in result.stderr
    missing = tmp_path / "missing.db"
    result = run_cli("export", "--study", "tiny", "--storage", f"sqlite:///{missing}")
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not missing.exists()


def test_storage_from_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_config(n_trials=1))
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = run_cli("search", "--config", str(config), "--artifact-dir", "",
                     env={"CNNSEARCH_STORAGE": url})
    assert result.returncode == 0, result.stderr
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 1


def test_python_dash_m_and_console_script_agree() -> None:
    script = Path(sys.executable).with_name("cnnsearch")
    result = subprocess.run([str(script), "--help"], check=False, capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0
    for command in ("search", "lrrt", "export", "train", "trials"):
        assert command in result.stdout


def test_version() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout == f"cnnsearch {version('cnnsearch')}\n"


def test_every_option_of_every_command_has_help_and_shows_its_default() -> None:
    import argparse

    from search.cli.parser import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.option_strings[0]}"
               for name, command in commands.choices.items() for action in command._actions
               if action.option_strings and not isinstance(action, argparse._HelpAction)
               and (not action.help or action.help == argparse.SUPPRESS)]
    assert missing == []
    shown = {name: " ".join(command.format_help().split())
             for name, command in commands.choices.items()}
    assert "--top TOP how many of the best completed trials (default: 3)" in shown["export"]
    assert "--rank RANK which design of the export, 1 = the best (default: 1)" in shown["train"]
    assert "--config CONFIG search space YAML" in shown["lrrt"]
    assert ("--device DEVICE auto (a GPU of its own if any, else cpu), cpu, cuda or cuda:N "
            "(default: auto)") in shown["lrrt"]
    assert "(default: 127.0.0.1)" in shown["dashboard"] and "(default: 8080)" in shown["dashboard"]
    assert "(default: None)" not in " ".join(shown.values())


def test_quiet_and_verbose_go_before_or_after_the_command() -> None:
    from search.cli.parser import build_parser

    parse = build_parser().parse_args
    assert parse(["trials", "--study", "s"]).verbosity == "normal"
    assert parse(["-q", "trials", "--study", "s"]).verbosity == "quiet"
    assert parse(["trials", "--study", "s", "-v"]).verbosity == "verbose"
    assert parse(["--verbose", "trials", "--study", "s"]).verbosity == "verbose"
    result = run_cli("trials", "--study", "s", "-q", "-v")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_quiet_search_prints_the_final_table_only(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_config(n_trials=1))
    result = run_cli("-q", "search", "--config", str(config), "--storage",
                     f"sqlite:///{tmp_path / 'q.db'}", "--artifact-dir", "")
    assert result.returncode == 0, result.stderr
    assert "trial  config" in result.stdout and "1 trials:" in result.stdout
    assert "[1/1]" not in result.stdout and "epoch" not in result.stdout
    assert "next:" not in result.stdout and result.stderr == ""


def test_the_next_commands_are_quoted_for_a_shell(tmp_path: Path) -> None:
    """A study name with a space, a quote and a `$` is printed so that pasting the line runs
    the command on that study, not on a word of it."""
    import shlex

    name = "it's $HOME a study"
    config = write_config(tmp_path / "c.yaml", tiny_config(n_trials=1, study=name))
    url = f"sqlite:///{tmp_path / 'n.db'}"
    result = run_cli("search", "--config", str(config), "--storage", url, "--artifact-dir", "")
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()
             if line.strip().startswith("cnnsearch trials")]
    assert len(lines) == 1, result.stdout
    assert shlex.split(lines[0]) == ["cnnsearch", "trials", "--study", name, "--storage", url]


def test_trials_as_json_are_the_table_rows(searched: dict) -> None:
    from search.views.results import row_fields, trial_row

    result = run_cli("trials", "--study", "tiny", "--storage", searched["url"],
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    study = optuna.load_study(study_name="tiny", storage=searched["url"])
    assert isinstance(rows, list) and len(rows) == len(study.trials) == 5
    for row, trial in zip(rows, study.trials, strict=True):
        assert {"number", "name", "state", "reason", "lrrt_score", "lr_bounds",
                "best_val_accuracy", "seconds"} <= set(row)
        assert row == json.loads(json.dumps(row_fields(trial_row(trial))))  # tuples -> lists
        assert row["number"] == trial.number and row["state"] == trial.state.name


def test_lrrt_without_set_says_which_choice_it_used(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", tiny_config())
    result = run_cli("lrrt", "--config", str(config), "--out", str(tmp_path / "out"),
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "fixed by --set: none; first choice used: blocks=1, filters=2, optimizer=adam, "
        "lr_range=[0.0001, 0.01]")
    assert "B1FL2Adam" in result.stdout


def test_lrrt_choices_line_names_what_set_fixed() -> None:
    from search.cli.commands import _choices_line
    from search.config import parse_config
    from search.jobs.single_lrrt import fix_space

    config = parse_config(tiny_config())
    assignments = ["blocks=2", "space.lr_range=[1e-3, 1e-1]"]
    assert _choices_line(config, fix_space(config, assignments), assignments) == (
        "fixed by --set: blocks=2, lr_range=[0.001, 0.1]; first choice used: filters=2, "
        "optimizer=adam")
