"""Scale by simulation: 16, 64 and 256 lightweight worker processes
(``benchmarks.scale.light_worker``: the worker loop, storage stack, slot lock and heartbeats
of ``cnnsearch worker``, a trivial objective) share one study on a real PostgreSQL through
one ``cnnsearch proxy``, while 10 % of them are SIGKILLed and the database restarts.

    python -m benchmarks.scale.run [--workers 16 64 256] [--out benchmarks/out/scale]
    python -m benchmarks.scale.run --quick      # 16 workers, a small budget (make test)

Reported per worker count: trials/s, ask+tell p50/p99, the database's connections at peak
(``pg_stat_activity`` sampled every 0.25 s; the sampler's own connection is not counted),
whether the study ends with exactly ``--max-trials`` finished trials, and the finished
trials lost or duplicated through the faults. A worker's log line is written after its
tell returned, so a trial a log calls COMPLETE must be COMPLETE in the database, once.
PostgreSQL is a throwaway local cluster (started as the `postgres` user when run as root).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import psycopg2
from optuna.trial import TrialState

from benchmarks.scale.light_worker import LightSettings

ROOT = Path(__file__).resolve().parents[2]
KILL_AT, RESTART_AT = 0.3, 0.55
"""Fractions of the budget finished when the workers are killed and the database restarts."""
OUTAGE_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    workers: int
    trials_per_worker: int
    think_seconds: float
    heartbeat_interval: int
    grace_period: int
    proxy_threads: int
    faults: bool = True

    @property
    def max_trials(self) -> int:
        return self.workers * self.trials_per_worker


@dataclass
class Outcome:
    workers: int
    max_trials: int
    finished: int
    budget_exact: bool
    seconds: float
    trials_per_s: float
    ask_tell_p50_ms: float
    ask_tell_p99_ms: float
    peak_connections: int
    killed: int
    restarted_database: bool
    reaped: int
    lost: int
    duplicated: int
    worker_pss_mib: float
    worker_rss_mib: float
    proxy_rss_mib: float
    torch_imported: bool
    think_seconds: float


class ConnectionSampler:
    """The database's client connections every 0.25 s, through one superuser connection
    to another database (so it never counts itself); reconnects after a restart."""

    def __init__(self, server: Any, database: str) -> None:
        self.server, self.database = server, database
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> Any:
        connection = psycopg2.connect(host=str(self.server.folder), port=self.server.port,
                                      user="postgres", dbname="postgres")
        connection.autocommit = True
        return connection

    def _run(self) -> None:
        connection = None
        while not self._stop.wait(0.25):
            try:
                connection = connection or self._connect()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                   "AND backend_type = 'client backend'", (self.database,))
                    self.peak = max(self.peak, cursor.fetchone()[0])
            except psycopg2.Error:
                connection = None
        if connection is not None:
            connection.close()

    def start(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def finished_count(server: Any, database: str) -> int:
    """Finished trials in the database, read as the superuser (no proxy, no pool)."""
    try:
        text = server.psql("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')",
                           database)
        return int(text or 0)
    except subprocess.CalledProcessError:
        return 0  # restarting, or no tables yet


def running_pids(server: Any, database: str) -> set[int]:
    """The pids of the workers running a trial now (the ``worker`` attr of RUNNING trials)."""
    try:
        text = server.psql("SELECT a.value_json FROM trial_user_attributes a JOIN trials t "
                           "USING (trial_id) WHERE t.state = 'RUNNING' AND a.key = 'worker'",
                           database)
    except subprocess.CalledProcessError:
        return set()
    return {int(line) for line in text.split() if line.isdigit()}


def choose_victims(workers: list[Any], running: set[int], count: int) -> list[Any]:
    """``count`` live workers to SIGKILL, those in the middle of a trial first (a trial to
    reap and retry), in a fixed pseudo-random order."""
    alive = [w for w in workers if w.is_alive()]
    random.Random(0).shuffle(alive)
    alive.sort(key=lambda w: w.pid not in running)
    return alive[:count]


def memory_mib(pid: int) -> tuple[float, float]:
    """(PSS, RSS) of a process in MiB: PSS divides the pages it shares with the other
    workers (forked from one server) among them; RSS counts them whole."""
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[key] = int(value.split()[0])
    except OSError:
        return 0.0, 0.0
    return fields.get("Pss", 0) / 1024, fields.get("Rss", 0) / 1024


def start_proxy(url: str, threads: int, folder: Path) -> tuple[subprocess.Popen, str]:
    """``cnnsearch proxy`` on a free port, as a user starts it; returns it and its URL."""
    env = {**os.environ, "CNNSEARCH_STORAGE": url, "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("CNNSEARCH_STORAGE_PASSWORD_FILE", None)
    log = open(folder / "proxy.log", "w")  # noqa: SIM115 - the proxy's for its lifetime
    proxy = subprocess.Popen([sys.executable, "-m", "search", "proxy", "--port", "0",
                              "--threads", str(threads)], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r"served on (grpc://\S+:\d+)", (folder / "proxy.log").read_text())
        if match:
            return proxy, match[1]
        if proxy.poll() is not None:
            break
        time.sleep(0.2)
    proxy.kill()
    raise RuntimeError(f"the proxy did not start: {(folder / 'proxy.log').read_text()[-2000:]}")


def read_logs(folder: Path) -> tuple[list[dict], list[dict]]:
    """Every worker's trial lines and closing lines; a line cut by a SIGKILL is skipped."""
    trials, closing = [], []
    for path in sorted(folder.glob("worker-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            (closing if "done" in entry else trials).append(entry)
    return trials, closing


def check_trials(frozen: list[optuna.trial.FrozenTrial], logged: list[dict],
                 max_trials: int) -> dict[str, Any]:
    """Budget exactness, and the finished trials lost or duplicated, from the database and
    the workers' logs."""
    states = {t._trial_id: t.state for t in frozen}
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in frozen)
    unfinished = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in frozen)
    told_complete = [e["id"] for e in logged if e["state"] == "COMPLETE"]
    lost = sum(states.get(i) != TrialState.COMPLETE for i in set(told_complete))
    families = Counter(t.system_attrs.get("failed_trial", t.number) for t in frozen
                       if t.state == TrialState.COMPLETE)
    duplicated = (sum(n - 1 for n in Counter(told_complete).values())
                  + max(0, finished - max_trials)
                  + sum(n - 1 for n in families.values()))
    return {"finished": finished, "budget_exact": finished == max_trials and unfinished == 0,
            "lost": lost, "duplicated": duplicated,
            "reaped": sum(t.state == TrialState.FAIL for t in frozen)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure(server: Any, plan: Plan, folder: Path, timeout: float) -> Outcome:
    """One worker count: a fresh database, a proxy, the workers, the faults, the checks."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("worker-*.jsonl"):  # an earlier run's logs would be counted
        old.unlink()
    url = server.new_database()
    database = url.rsplit("/", 1)[1]
    proxy, proxy_url = start_proxy(url, plan.proxy_threads, folder)
    study_name = f"scale-{plan.workers}"
    from search.service.storage import open_storage

    creator = open_storage(proxy_url)
    optuna.create_study(study_name=study_name, storage=creator, direction="maximize")
    sampler = ConnectionSampler(server, database).start()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["benchmarks.scale.light_worker"])
    from benchmarks.scale import light_worker

    workers = [context.Process(target=light_worker.main, args=(LightSettings(
        url=proxy_url, study=study_name, max_trials=plan.max_trials,
        think_seconds=plan.think_seconds, heartbeat_interval=plan.heartbeat_interval,
        grace_period=plan.grace_period, log_path=str(folder / f"worker-{i}.jsonl")),))
        for i in range(plan.workers)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    killed: list[multiprocessing.Process] = []
    restarted = False
    pss = rss = 0.0
    deadline = started + timeout
    try:
        while any(w.is_alive() for w in workers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{plan.workers} workers still running after {timeout:.0f} s")
            done = finished_count(server, database)
            if plan.faults and not killed and done >= KILL_AT * plan.max_trials:
                alive = [w for w in workers if w.is_alive()]
                sizes = [memory_mib(w.pid) for w in alive]  # mid-run, before the kills
                pss = statistics.mean(s[0] for s in sizes)
                rss = statistics.mean(s[1] for s in sizes)
                killed = choose_victims(workers, running_pids(server, database),
                                        max(1, plan.workers // 10))
                for worker in killed:
                    os.kill(worker.pid, signal.SIGKILL)
            elif plan.faults and killed and not restarted and done >= RESTART_AT * plan.max_trials:
                server.stop()
                time.sleep(OUTAGE_SECONDS)
                server.start()
                restarted = True
            elif not plan.faults and not pss and done >= KILL_AT * plan.max_trials:
                sizes = [memory_mib(w.pid) for w in workers if w.is_alive()]
                pss = statistics.mean(s[0] for s in sizes)
                rss = statistics.mean(s[1] for s in sizes)
            time.sleep(0.5)
        seconds = time.monotonic() - started
        proxy_rss = memory_mib(proxy.pid)[1]
    finally:
        sampler.stop()
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            worker.join()
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proxy.kill()
    frozen = optuna.storages.RDBStorage(url).get_all_trials(
        optuna.storages.RDBStorage(url).get_study_id_from_name(study_name), deepcopy=False)
    logged, closing = read_logs(folder)
    checked = check_trials(frozen, logged, plan.max_trials)
    latencies = [1000 * (e["ask"] + e["tell"]) for e in logged]
    unexpected = [w.exitcode for w in workers if w not in killed and w.exitcode != 0]
    if unexpected:
        raise RuntimeError(f"workers exited with {unexpected}: see {folder}")
    return Outcome(
        workers=plan.workers, max_trials=plan.max_trials, finished=checked["finished"],
        budget_exact=checked["budget_exact"], seconds=round(seconds, 1),
        trials_per_s=round(checked["finished"] / seconds, 2),
        ask_tell_p50_ms=round(percentile(latencies, 0.5), 1),
        ask_tell_p99_ms=round(percentile(latencies, 0.99), 1),
        peak_connections=sampler.peak, killed=len(killed), restarted_database=restarted,
        reaped=checked["reaped"], lost=checked["lost"], duplicated=checked["duplicated"],
        worker_pss_mib=round(pss, 1), worker_rss_mib=round(rss, 1),
        proxy_rss_mib=round(proxy_rss, 1),
        torch_imported=any(c.get("torch_imported") for c in closing),
        think_seconds=plan.think_seconds)


def table(outcomes: list[Outcome]) -> str:
    lines = ["| workers | finished / budget | exact | trials/s | ask+tell p50 (ms) | "
             "p99 (ms) | peak DB connections | SIGKILLed | DB restart | reaped | lost | "
             "duplicated | PSS / RSS per worker (MiB) |",
             "|---:|---:|:-:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|"]
    for o in outcomes:
        lines.append(
            f"| {o.workers} | {o.finished} / {o.max_trials} | {'yes' if o.budget_exact else 'NO'}"
            f" | {o.trials_per_s:.1f} | {o.ask_tell_p50_ms:.1f} | {o.ask_tell_p99_ms:.1f} | "
            f"{o.peak_connections} | {o.killed} | {'yes' if o.restarted_database else 'no'} | "
            f"{o.reaped} | {o.lost} | {o.duplicated} | {o.worker_pss_mib:.0f} / "
            f"{o.worker_rss_mib:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--quick", action="store_true",
                        help="16 workers, 3 trials each, short heartbeats (the make test run)")
    parser.add_argument("--trials-per-worker", type=int, default=4)
    parser.add_argument("--offered-rate", type=float, default=16.0,
                        help="trials/s the workers would run together if storage cost nothing: "
                        "each waits workers / rate seconds a trial (on 2 cores, 256 "
                        "processes must leave the proxy and PostgreSQL a core)")
    parser.add_argument("--heartbeat-interval", type=int, default=10)
    parser.add_argument("--grace-period", type=int, default=30)
    parser.add_argument("--proxy-threads", type=int, default=8)
    parser.add_argument("--no-faults", action="store_true", help="no SIGKILL, no restart")
    parser.add_argument("--out", default="benchmarks/out/scale",
                        help="folder for the logs, results.json and table.md")
    args = parser.parse_args(argv)
    from tests.postgres import start_server

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.simplefilter("ignore")
    out = Path(args.out)
    counts = [16] if args.quick else args.workers
    server = start_server()
    outcomes = []
    try:
        for workers in counts:
            plan = Plan(
                workers=workers, trials_per_worker=3 if args.quick else args.trials_per_worker,
                think_seconds=workers / args.offered_rate,
                heartbeat_interval=1 if args.quick else args.heartbeat_interval,
                grace_period=10 if args.quick else args.grace_period,
                proxy_threads=args.proxy_threads, faults=not args.no_faults)
            outcome = measure(server, plan, out / f"w{workers}", timeout=900)
            outcomes.append(outcome)
            print(json.dumps(asdict(outcome)), flush=True)
    finally:
        server.stop()
    (out / "results.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    text = table(outcomes)
    (out / "table.md").write_text(text + "\n")
    print(f"\n# scale: workers through one cnnsearch proxy, optuna {optuna.__version__}, "
          f"{os.cpu_count()} CPU cores\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
