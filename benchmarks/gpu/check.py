"""``make gpu-check``: everything a GPU should show, in one command, on one card, with every
figure written to one folder (default ``gpu-check/``, not in git).

    python -m benchmarks.gpu.check [--out gpu-check] [--device cuda]

1. the card: its name, memory, driver and torch's CUDA (``card.json``);
2. the GPU tests: ``pytest -m gpu`` (``pytest-gpu.txt``, ``pytest-gpu.xml``);
3. the demo on the card: ``cnnsearch search --config configs/fashion-mnist.yaml --device
   cuda`` into a fresh SQLite file, timed (``demo.txt``; goal: under 60 s, best >= 0.85);
4. the throughput table (``benchmarks.gpu.throughput``: ``throughput.md``, ``.json``);
5. four workers packed on the card (``cnnsearch worker --trials-per-gpu 4``) running the
   demo's 12 trials against a throwaway local PostgreSQL, timed, with the card and slot each
   trial recorded (``packed.txt``);

then ``summary.md`` and ``summary.json`` with every figure and the goals. A step that fails
or runs past its time limit is recorded as such and the check goes on; the exit code is 1
when any step failed. The steps' limits add up to under 8 minutes on an H100-class card.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "fashion-mnist.yaml"
DEMO_SECONDS_GOAL = 60.0
DEMO_BEST_GOAL = 0.85
LIMITS = {"tests": 60, "demo": 75, "throughput": 240, "packed": 90}
"""Seconds each step may take: 7.75 minutes at worst, all of them together."""
THROUGHPUT_SECONDS = 3.0
"""Training measured per variant and concurrency: 16 measurements and the compilation of
two variants fit the throughput step's limit."""


def _run(command: list[str], log: Path, limit: float, env: dict[str, str] | None = None
         ) -> tuple[int, float]:
    """Run ``command`` with its output in ``log``; (exit code, seconds). 124: timed out."""
    started = time.perf_counter()
    with open(log, "w") as out:
        try:
            code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=limit, env={**os.environ, **(env or {})}).returncode
        except subprocess.TimeoutExpired:
            code = 124
            out.write(f"\n[gpu-check: stopped after {limit:.0f} s]\n")
    return code, time.perf_counter() - started


def _cnnsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "search", *args]


def card_facts(device: str) -> dict[str, Any] | None:
    """The card's facts; None when no CUDA GPU is visible."""
    import torch

    if not torch.cuda.is_available():
        return None
    index = torch.device(device).index or 0
    properties = torch.cuda.get_device_properties(index)
    facts = {"name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1),
             "capability": f"{properties.major}.{properties.minor}",
             "bf16": torch.cuda.is_bf16_supported(including_emulation=False),
             "torch": torch.__version__, "cuda": torch.version.cuda,
             "visible_cards": torch.cuda.device_count()}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        facts["driver"] = smi.stdout.strip().splitlines()[index] if smi.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        facts["driver"] = None
    return facts


def _best_value(url: str, study: str) -> tuple[float | None, dict[str, int], list]:
    """Best value, trial counts by state, and (number, card, slot) of each trial."""
    import optuna

    from search.record import TrialRecord

    loaded = optuna.load_study(study_name=study, storage=url)
    trials = loaded.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    values = [t.value for t in trials if t.value is not None]
    placed = [(r.number, r.card, r.slot, r.precision) for r in map(TrialRecord.from_frozen,
                                                                 trials)]
    return (max(values) if values else None), counts, placed


def step_tests(out: Path, device: str) -> dict[str, Any]:
    code, seconds = _run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests",
                          f"--junitxml={out / 'pytest-gpu.xml'}"], out / "pytest-gpu.txt",
                         LIMITS["tests"])
    tail = (out / "pytest-gpu.txt").read_text().strip().splitlines()[-1:]
    return {"ok": code == 0, "exit_code": code, "seconds": round(seconds, 1),
            "result": tail[0] if tail else ""}


def step_demo(out: Path, device: str) -> dict[str, Any]:
    folder = out / "demo"
    folder.mkdir(exist_ok=True)
    url = f"sqlite:///{folder / 'demo.db'}"
    (folder / "demo.db").unlink(missing_ok=True)
    code, seconds = _run(_cnnsearch("search", "--config", str(DEMO), "--device", device,
                                    "--storage", url, "--artifact-dir", str(folder / "artifacts"),
                                    "--checkpoint-dir", str(folder / "checkpoints")),
                         out / "demo.txt", LIMITS["demo"])
    result: dict[str, Any] = {"ok": code == 0, "exit_code": code, "seconds": round(seconds, 1)}
    if code == 0:
        best, counts, placed = _best_value(url, "fashion-mnist-demo")
        result.update(best=best, trials=counts, precisions=sorted({p[3] for p in placed
                                                                   if p[3]}))
        result["goal_met"] = best is not None and best >= DEMO_BEST_GOAL and \
            seconds < DEMO_SECONDS_GOAL
    return result


def step_throughput(out: Path, device: str) -> dict[str, Any]:
    code, seconds = _run([sys.executable, "-m", "benchmarks.gpu.throughput", "--device",
                          device, "--seconds", str(THROUGHPUT_SECONDS), "--out", str(out)],
                         out / "throughput.txt",
                         LIMITS["throughput"])
    result: dict[str, Any] = {"ok": code == 0, "exit_code": code, "seconds": round(seconds, 1)}
    if code == 0:
        result["goals"] = json.loads((out / "throughput.json").read_text())["goals"]
    return result


def step_packed(out: Path, device: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.postgres import PG_BIN, start_server

    if not (PG_BIN / "initdb").exists():
        return {"ok": False, "skipped": f"no PostgreSQL server binaries in {PG_BIN}"}
    server = start_server()
    try:
        url = server.new_database()
        env = {"CNNSEARCH_STORAGE": url, "CNNSEARCH_PLACEMENT_DIR": str(out / "placement")}
        study = "fashion-mnist-packed"
        code, _ = _run(_cnnsearch("create-study", "--study", study, "--config", str(DEMO)),
                       out / "packed-create.txt", 60, env)
        if code != 0:
            return {"ok": False, "exit_code": code, "step": "create-study"}
        code, seconds = _run(_cnnsearch("worker", "--study", study, "--config", str(DEMO),
                                        "--max-trials", "12", "--trials-per-gpu", "4",
                                        "--device", device, "--artifact-dir", "",
                                        "--checkpoint-dir", str(out / "packed-checkpoints")),
                             out / "packed.txt", LIMITS["packed"], env)
        result: dict[str, Any] = {"ok": code == 0, "exit_code": code,
                                  "seconds": round(seconds, 1)}
        if code == 0:
            best, counts, placed = _best_value(url, study)
            result.update(best=best, trials=counts,
                          slots=sorted({(card, slot) for _, card, slot, _ in placed
                                        if card is not None}, key=str))
        return result
    finally:
        server.stop()


def summary(facts: dict[str, Any], steps: dict[str, dict[str, Any]], out: Path) -> str:
    lines = [f"# GPU check: {facts['name']} ({facts['memory_gib']} GiB, capability "
             f"{facts['capability']}, bf16 {'yes' if facts['bf16'] else 'no'}), torch "
             f"{facts['torch']}, CUDA {facts['cuda']}, driver {facts.get('driver')}", ""]
    for name, result in steps.items():
        state = ("skipped: " + result["skipped"]) if "skipped" in result else (
            "ok" if result.get("ok") else f"FAILED (exit {result.get('exit_code')})")
        figures = {k: v for k, v in result.items() if k not in ("ok", "exit_code", "skipped")}
        lines.append(f"- {name}: {state}; {json.dumps(figures, default=str)}")
    throughput = out / "throughput.md"
    if throughput.exists():
        lines += ["", "## Throughput", "", throughput.read_text()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-check")
    parser.add_argument("--device", default="cuda", help="the card checked (cuda, cuda:N)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    facts = card_facts(args.device)
    if facts is None:
        print("gpu-check: no CUDA GPU is visible; it checks a GPU (the CPU tests are make "
              "test)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "card.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"gpu-check on {facts['name']}: figures in {out}", flush=True)
    plan: dict[str, Callable[[Path, str], dict[str, Any]]] = {
        "tests": step_tests, "demo": step_demo, "throughput": step_throughput,
        "packed": step_packed}
    steps = {}
    started = time.perf_counter()
    for name, step in plan.items():
        print(f"- {name} ...", end=" ", flush=True)
        try:
            steps[name] = step(out, args.device)
        except Exception as error:  # one step's failure must not lose the others' figures
            steps[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print("ok" if steps[name].get("ok") else "FAILED" if "skipped" not in steps[name]
              else "skipped", flush=True)
    steps_total = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps({"card": facts, "steps": steps,
                                                  "seconds": steps_total}, indent=2,
                                                 default=str) + "\n")
    (out / "summary.md").write_text(summary(facts, steps, out))
    print(f"done in {steps_total:.0f} s: {out / 'summary.md'}")
    failed = [name for name, result in steps.items()
              if not result.get("ok") and "skipped" not in result]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
