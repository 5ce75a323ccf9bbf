"""What the commands print (``search.cli.commands``), in real processes: ``-q`` keeps errors
and the final result only; ``cnnsearch lrrt`` shows its progress, a ``-`` for what it never
measured and only the first choices its design uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import (
    run_cli,
    tiny_config,
    worker_config,
    write_brightness_folder,
    write_config,
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_brightness_folder(tmp_path_factory.mktemp("images"))


def test_quiet_search_prints_no_header(images: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", worker_config(images, "quiet", n_trials=1))
    args = ("search", "--config", str(config), "--device", "cpu", "--artifact-dir", "",
            "--checkpoint-dir", "")
    quiet = run_cli("-q", *args, "--storage", f"sqlite:///{tmp_path / 'q.db'}")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.lstrip().startswith("trial  config"), quiet.stdout
    assert "study 'quiet'" not in quiet.stdout and quiet.stderr == ""
    normal = run_cli(*args, "--storage", f"sqlite:///{tmp_path / 'n.db'}")
    assert normal.returncode == 0, normal.stderr
    assert normal.stdout.startswith("study 'quiet': ")  # the default is unchanged


def test_quiet_worker_prints_its_closing_line_only(images: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", worker_config(images, "quiet"))
    args = ("worker", "--study", "quiet", "--config", str(config), "--max-trials", "1",
            "--device", "cpu", "--artifact-dir", "", "--checkpoint-dir", "")
    quiet = run_cli("-q", *args, "--storage", f"sqlite:///{tmp_path / 'q.db'}")
    assert quiet.returncode == 0, quiet.stderr
    assert len(quiet.stdout.splitlines()) == 1, quiet.stdout
    assert quiet.stdout.startswith("worker ") and "done after 1 trial(s)" in quiet.stdout
    assert quiet.stderr == ""
    normal = run_cli(*args, "--storage", f"sqlite:///{tmp_path / 'n.db'}")
    assert normal.returncode == 0, normal.stderr
    assert " on cpu: study 'quiet', max trials 1" in normal.stdout.splitlines()[0]


def lrrt_config(images: Path, folder: Path, **lrrt: object) -> Path:
    config = worker_config(images, "lrrt")
    config["lrrt"].update(lrrt)
    return write_config(folder / "lrrt.yaml", config)


def test_lrrt_shows_its_progress_and_quiet_does_not(images: Path, tmp_path: Path) -> None:
    config = lrrt_config(images, tmp_path, epochs=4)
    args = ("lrrt", "--config", str(config), "--out", str(tmp_path / "out"), "--device", "cpu")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [line for line in lines if line.startswith("B1FL2Adam  LR range test ")]
    assert len(steps) >= 2 and "\r" not in result.stdout  # a pipe: plain lines
    assert steps[-1].startswith("B1FL2Adam  LR range test 100% (")
    assert " lr " in steps[-1] and " loss " in steps[-1] and "test ETA" in steps[-1]
    assert lines.index(steps[0]) == 1  # after the choices line, before the result
    assert lines[-2].startswith("B1FL2Adam: best smoothed accuracy")
    quiet = run_cli("-q", *args)
    assert quiet.returncode == 0, quiet.stderr
    assert "LR range test" not in quiet.stdout and quiet.stderr == ""
    assert quiet.stdout.startswith("B1FL2Adam: best smoothed accuracy")


def test_lrrt_lists_only_the_first_choices_its_design_uses() -> None:
    from search.cli.commands import _choices_line
    from search.config import parse_config
    from search.jobs.single_lrrt import fix_space

    config = tiny_config()
    config["space"].update(architecture=["thesis", "vgg"], depth=[11, 13],
                           momentum=[0.0, 0.9], beta1=[0.9, 0.95])
    config = parse_config(config)

    def line(*assignments: str) -> str:
        return _choices_line(config, fix_space(config, list(assignments)), list(assignments))

    assert line() == ("fixed by --set: none; first choice used: blocks=1, filters=2, "
                      "optimizer=adam, lr_range=[0.0001, 0.01], architecture=thesis, "
                      "beta1=0.9")  # no depth (vgg), no momentum (sgd)
    assert line("optimizer=sgd", "architecture=vgg") == (
        "fixed by --set: optimizer=sgd, architecture=vgg; first choice used: filters=2, "
        "lr_range=[0.0001, 0.01], depth=11, momentum=0.0")  # no blocks (thesis), no beta1


def test_lrrt_shows_a_dash_for_a_validation_never_measured(images: Path,
                                                           tmp_path: Path) -> None:
    config = worker_config(images, "lrrt")  # diverges in its first epoch: no validation
    config["space"]["lr_range"] = [[1.0, 10.0]]
    config["lrrt"].update(epochs=1, divergence_factor=1.5)
    result = run_cli("-q", "lrrt", "--config", str(write_config(tmp_path / "d.yaml", config)),
                     "--out", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert "diverged True" in line, line
    assert ", best val accuracy -, " in line and "0.0000" not in line, line
    measured = run_cli("-q", "lrrt", "--config", str(lrrt_config(images, tmp_path, epochs=1)),
                       "--out", str(tmp_path / "out"), "--device", "cpu")
    assert measured.returncode == 0, measured.stderr
    assert re.search(r", best val accuracy \d\.\d{4}, ", measured.stdout), measured.stdout


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_trials_of_a_multi_objective_study_show_its_second_objective(tmp_path: Path) -> None:
    import json

    import optuna
    from optuna.trial import TrialState, create_trial

    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(study_name="mo", storage=url,
                                directions=["maximize", "minimize"])
    study.set_metric_names(["val_accuracy", "latency_ms"])
    study.add_trial(create_trial(state=TrialState.COMPLETE, values=[0.75, 1.25],
                                 user_attrs={"config_name": "B1FL2Adam",
                                             "val_curve": [0.5, 0.75]}))
    study.add_trial(create_trial(state=TrialState.PRUNED,
                                 user_attrs={"config_name": "B2FL4SGD"}))
    table = run_cli("trials", "--study", "mo", "--storage", url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[-4:] == ["acc", "latency_ms", "seconds", "flags"]
    assert lines[2].split()[3:7] == ["-", "-", "0.7500", "1.25"], lines[2]
    rows = json.loads(run_cli("trials", "--study", "mo", "--storage", url,
                              "--format", "json").stdout)
    assert [row["latency_ms"] for row in rows] == [1.25, None]
    assert [row["best_val_accuracy"] for row in rows] == [0.75, None]
