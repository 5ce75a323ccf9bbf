"""``cnnsearch create-study --prepare-data``: the dataset is in place before any worker starts."""

from __future__ import annotations

from pathlib import Path

import optuna

from tests.conftest import run_cli, worker_config, write_brightness_folder, write_config


def test_prepare_data_loads_the_dataset_then_creates_the_study(tmp_path: Path) -> None:
    images = write_brightness_folder(tmp_path / "images", images_per_class=10)
    config = write_config(tmp_path / "c.yaml", worker_config(images, "prepared"))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_cli("create-study", "--study", "prepared", "--config", str(config),
                     "--storage", url, "--prepare-data", "--artifact-dir", "", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    data_lines = [line for line in lines if line.startswith("data: ")]
    assert data_lines == [f"data: imagefolder:{images} ready in {images} "
                          "(12 train / 4 validation images)"]  # 70/15/15 of 2 x 10
    assert lines.index(data_lines[0]) < next(
        i for i, line in enumerate(lines) if line.startswith("study 'prepared' ready")
    )
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["prepared"]


def test_a_data_problem_stops_before_the_study_is_created(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml",
                          worker_config(tmp_path / "no-such-folder", "unprepared"))
    database = tmp_path / "study.db"
    result = run_cli("create-study", "--study", "unprepared", "--config", str(config),
                     "--storage", f"sqlite:///{database}", "--prepare-data", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no-such-folder" in result.stderr
    assert not database.exists()
