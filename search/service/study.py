"""Creating and loading cnnsearch studies: sampler and pruner from the config, and the
config itself stored in the study so every other command (and worker) can read it."""

from __future__ import annotations

import json
import warnings

import optuna

from search.config import SearchConfig, parse_config
from search.config.settings import identity_differences
from search.config.space import sampled_dimensions
from search.errors import UserError
from search.method.objective_metrics import directions
from search.method.optuna_samplers import make_sampler
from search.method.pruner import LRRTPruner, make_wrapped_pruner
from search.record import StudyRecord, StudyRecorder
from search.service.trial_slots import TrialSlotLock


def build_pruner(config: SearchConfig) -> LRRTPruner:
    """The gate with the config's rules, around the after-LRRT pruner it names."""
    settings = config.pruner
    wrapped = make_wrapped_pruner(
        settings.after_lrrt,
        startup_trials=settings.after_lrrt_startup_trials,
        warmup_epochs=settings.after_lrrt_warmup_epochs,
    )
    return LRRTPruner(wrapped, settings.gate_rules())


def process_sampler_seed(seed: int, index: int) -> int:
    """The sampler seed of the ``index``-th process to search a study: the config's seed for
    the first (so a search alone is reproducible from its YAML), a different one for every
    other process searching it, at once or later, so they never draw the same designs.
    Trial run seeds do not depend on it (``search.method.suggest``)."""
    return seed if index == 0 else (seed * 1_000_003 + index) % 2**32


def claim_process_index(study: optuna.study.Study,
                        storage: optuna.storages.BaseStorage) -> int:
    """This process's number among those that have searched the study (0 for the first),
    read and bumped under the study's lock so processes starting together get different
    numbers."""
    url = getattr(storage, "url", None)
    lock = TrialSlotLock(url, f"{study.study_name}#processes") if url else None
    try:
        if lock is not None:
            lock.acquire()
        index = StudyRecorder(study).process_joined()
    finally:
        if lock is not None:
            lock.close()
    return index


def build_sampler(config: SearchConfig, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The config's sampler with ``seed`` (default: the config's); ``grid`` enumerates the
    space's sampled dimensions."""
    return make_sampler(config.sampler, seed=config.seed if seed is None else seed,
                        study_seed=config.seed, dimensions=sampled_dimensions(config))


def check_compatible(study_name: str, storage: optuna.storages.BaseStorage,
                     config: SearchConfig) -> None:
    """Refuse to add trials from a different search space to an existing study, naming the
    keys that differ. Its budget (``n_trials``) and ``seed`` may change."""
    try:
        existing = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return
    record = StudyRecord.of(existing)
    if record.fingerprint is None and record.config is None:
        raise UserError(f"study '{study_name}' was not created by cnnsearch (it stores no "
                        "configuration): cnnsearch does not search it, nor write into it; use "
                        "another --study name")
    stored = record.fingerprint
    if stored is not None and not _same_study(existing, stored, config):
        raise UserError(
            f"study '{study_name}' was created with a different configuration "
            f"({_what_differs(existing, config)}); "
            "use another --study name (or the same YAML it was created with)"
        )
    wanted = [optuna.study.StudyDirection[d.upper()] for d in directions(config.objectives)]
    if existing.directions != wanted:
        raise UserError(f"study '{study_name}' {_directions_text(existing.directions)}, and the "
                        f"config's objectives ({', '.join(config.objectives)}) "
                        f"{_directions_text(wanted, verb='ask')}; use another --study name")


def _directions_text(study_directions: list[optuna.study.StudyDirection],
                     verb: str = "") -> str:
    """``has one objective: it maximises``, ``has 2 objectives: it maximises then
    minimises``; with ``verb``: ``ask to maximise then minimise``."""
    words = [direction.name.lower().replace("maximize", "maximise").replace(
        "minimize", "minimise") for direction in study_directions]
    if verb:
        return f"{verb} to " + " then ".join(w.removesuffix("s") for w in words)
    count = "one objective" if len(words) == 1 else f"{len(words)} objectives"
    return f"has {count}: it " + " then ".join(f"{w}s" for w in words)


def _same_study(existing: optuna.study.Study, stored: str, config: SearchConfig) -> bool:
    """Whether ``config`` is the study's own, whatever its budget and seed. A study made
    before those left the fingerprint stored one of every key (``legacy_fingerprint``):
    when the YAML it stored gives that one back, that YAML says what the study is."""
    if stored in (config.fingerprint(), config.legacy_fingerprint()):
        return True
    made_with = _config_stored_in(existing)
    return (made_with is not None and made_with.legacy_fingerprint() == stored
            and made_with.fingerprint() == config.fingerprint())


def _config_stored_in(study: optuna.study.Study) -> SearchConfig | None:
    """The config a study stored, or None when it has none this version can read."""
    raw = StudyRecord.of(study).config
    if raw is None:
        return None
    try:
        return parse_config(raw)
    except (UserError, TypeError, ValueError):
        return None


def study_data_seed(study_name: str, storage: optuna.storages.BaseStorage,
                    config: SearchConfig) -> int:
    """The seed that picks a study's images (its subsets and validation split): the one it
    was created with, read from the config it stored, so that a search with another seed
    draws new designs and run seeds on the images every earlier trial saw. The config's own
    seed for a study not created yet, or one whose stored config names no seed."""
    try:
        existing = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return config.seed
    made_with = _config_stored_in(existing)
    return made_with.seed if made_with is not None and "seed" in made_with.raw else config.seed


def _what_differs(existing: optuna.study.Study, config: SearchConfig) -> str:
    """The keys that differ, stored against new values, in a few words on one line."""
    made_with = _config_stored_in(existing)
    if made_with is None:
        return "it stores no configuration this version can read, so the keys cannot be named"
    differences = identity_differences(made_with, config)
    if not differences:
        return ("no key differs from the YAML it stored: a default, or an option given when "
                "it was made, did")
    return "; ".join(f"{path}: {_shown(before)} stored, {_shown(after)} new"
                     for path, before, after in differences)


def _shown(value: object, limit: int = 60) -> str:
    """A value as YAML's flow style would write it (JSON), cut to ``limit`` characters."""
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def open_search_study(
    study_name: str,
    storage: optuna.storages.BaseStorage,
    config: SearchConfig,
    *,
    searching: bool = False,
    artifact_dir: str | None = None,
) -> optuna.study.Study:
    """Create the study or join it. Its metrics are named after the objectives
    (``val_accuracy``, ``n_params``...), so optuna-dashboard does not show "Objective 0"; a
    study made before that is named when opened again. A single objective, as always, makes
    a study that maximises.

    Checking the config against the study's, creating the study and storing its config are
    one step under the study's lock (an ``flock`` beside an SQLite file, an advisory lock on
    PostgreSQL): two processes creating the same new study with different configs at the
    same moment cannot both pass the check; the second finds the first's fingerprint."""
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    lock = TrialSlotLock(url, f"{study_name}#create") if url else None
    try:
        if lock is not None:
            lock.acquire()
        check_compatible(study_name, storage, config)
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            directions=directions(config.objectives),  # ["maximize"] for one objective
            sampler=build_sampler(config),
            pruner=build_pruner(config),
            load_if_exists=True,
        )
        if study.metric_names is None:
            with warnings.catch_warnings():  # experimental in Optuna
                warnings.simplefilter("ignore")
                study.set_metric_names(list(config.objectives))
        if StudyRecord.of(study).fingerprint is None:
            # With the seed it was made with (``--seed`` included): it fixes its images.
            made_with = {**config.raw, "seed": config.seed}
            StudyRecorder(study).made_with(
                config=json.loads(json.dumps(made_with, default=str)),
                fingerprint=config.fingerprint(), artifact_dir=artifact_dir)
    finally:
        if lock is not None:
            lock.close()  # before claim_process_index: an SQLite lock is one file, not nested
    if searching:  # a process that will sample trials: its own sampler seed
        index = claim_process_index(study, storage)
        study.sampler = build_sampler(config, process_sampler_seed(config.seed, index))
    return study
