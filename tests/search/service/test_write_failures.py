"""A nearly full disk under the checkpoints and artifacts: ``search`` and ``worker`` go on, the
trials degraded, never failed, whatever the writer raised.

With a few kilobytes free, ``torch.save`` fails with ``RuntimeError`` ("unexpected pos"), not
``OSError``; the artifact store with ``OSError`` (no space left). Real tmpfs mounts filled
to 8-60 KiB free; skipped where the machine does not allow mounting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.record import DEGRADED
from tests.conftest import ROOT, worker_config, write_brightness_folder, write_config
from tests.mounts import nearly_full_tmpfs
from tests.search.service.test_search_process import ENV


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_brightness_folder(tmp_path_factory.mktemp("images"), images_per_class=30)


def large_checkpoint_config(images: Path, study: str) -> dict:
    """Trials whose checkpoint (~3 MB with Adam's moments) cannot fit what is left free."""
    config = worker_config(images, study, epochs=2)
    config["space"].update(blocks=[1], filters=[4], fc_units=[512])
    return config


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search", *command], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600, check=False)


def folders(disk: Path, tmp_path: Path, on_disk: str) -> list[str]:
    """--checkpoint-dir and --artifact-dir: on the nearly full disk, or elsewhere."""
    def where(name: str) -> str:
        return str((disk if on_disk in (name, "both") else tmp_path) / name)

    return ["--checkpoint-dir", where("checkpoints"), "--artifact-dir", where("artifacts")]


def assert_degraded_not_failed(result: subprocess.CompletedProcess, url: str, study: str,
                               disk: Path, on_disk: str) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    loaded = optuna.load_study(study_name=study, storage=url)
    trials = loaded.trials
    assert trials and all(t.state == TrialState.COMPLETE for t in trials), [
        (t.number, t.state, t.user_attrs.get("fail_reason")) for t in trials]
    kinds = {"checkpoints": ["checkpoint"], "artifacts": ["artifact"]}.get(
        on_disk, ["checkpoint", "artifact"])
    for trial in trials:
        problems = trial.user_attrs[DEGRADED]
        assert any(p.startswith(f"{kinds[0]}: ") for p in problems), problems
        assert {p.split(":")[0] for p in problems} <= set(kinds), problems
        assert len(problems) <= 4, problems  # one entry per kind of failure, not per epoch
    assert f"degraded: {kinds[0]}: " in result.stderr
    # No half-written file: what is left is an artifact a trial recorded (a JSON curve small
    # enough to fit), never a temp file or a checkpoint.
    recorded = {artifact.artifact_id for trial in trials for artifact in
                optuna.artifacts.get_all_artifact_meta(trial, storage=loaded._storage)}
    leftovers = {p.name for p in disk.rglob("*") if p.is_file() and p.name != ".filler"}
    assert leftovers <= recorded, leftovers - recorded


@pytest.mark.parametrize(("on_disk", "free_kib"), [
    ("checkpoints", 8), ("checkpoints", 36), ("artifacts", 12)])
def test_search_on_a_nearly_full_disk_degrades_its_trials(images: Path, tmp_path: Path,
                                                          on_disk: str, free_kib: int) -> None:
    """Checkpoints alone on the disk: ``torch.save`` raises ``RuntimeError``."""
    config = write_config(tmp_path / "c.yaml", large_checkpoint_config(images, "full"))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with nearly_full_tmpfs(tmp_path / "disk", free_kib) as disk:
        result = run(["search", "--config", str(config), "--storage", url, "--device", "cpu",
                      "--n-trials", "1", *folders(disk, tmp_path, on_disk)], tmp_path)
        assert_degraded_not_failed(result, url, "full", disk, on_disk)


@pytest.mark.parametrize(("on_disk", "free_kib"), [("checkpoints", 60), ("both", 12)])
def test_a_worker_on_a_nearly_full_disk_degrades_its_trials(images: Path, tmp_path: Path,
                                                            on_disk: str,
                                                            free_kib: int) -> None:
    config = write_config(tmp_path / "c.yaml", large_checkpoint_config(images, "full"))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with nearly_full_tmpfs(tmp_path / "disk", free_kib) as disk:
        result = run(["worker", "--study", "full", "--config", str(config), "--storage", url,
                      "--device", "cpu", "--max-trials", "1",
                      *folders(disk, tmp_path, on_disk)], tmp_path)
        assert_degraded_not_failed(result, url, "full", disk, on_disk)


def test_the_mount_helper_leaves_what_it_was_asked_to(tmp_path: Path) -> None:
    from tests.mounts import free_bytes

    with nearly_full_tmpfs(tmp_path / "disk", 12) as disk:
        assert 8 * 1024 <= free_bytes(disk) <= 16 * 1024
    assert ROOT.is_dir()
