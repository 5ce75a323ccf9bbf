"""``LRRTPruner`` on real in-memory Optuna studies, plus its module-level arithmetic."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import optuna
import pytest
from optuna.trial import TrialState

from search.method.lrrt.curve import STILL_STEPS, WEIGHTS_STILL
from search.method.pruner import (
    LRRT_STEP,
    GateRules,
    LRRTPruner,
    below_peers,
    chance_threshold,
    lrrt_verdict,
    make_wrapped_pruner,
    pruner_label,
    ramp_covered_bounds,
)
from search.record import (
    BELOW_PEERS,
    CHANCE_LEVEL,
    DIVERGED,
    UNSTABLE,
    CurvePoints,
    LRRTSummary,
    TrialRecorder,
    frozen_trial,
)

GROUP = "cifar10|0.0001-0.01"
OTHER_GROUP = "cifar10|0.01-0.1"

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --------------------------------------------------------------------------- arithmetic


def test_chance_threshold() -> None:
    assert chance_threshold(10, 0.1) == pytest.approx(0.19)
    assert chance_threshold(2, 0.0) == pytest.approx(0.5)
    assert chance_threshold(4, 0.5) == pytest.approx(0.625)


def test_below_peers() -> None:
    peers = [0.4, 0.5, 0.6, 0.7, 0.8]  # 25th percentile 0.5
    assert below_peers(0.47, peers, 25.0, 0.02)
    assert not below_peers(0.49, peers, 25.0, 0.02)
    assert not below_peers(0.48, peers, 25.0, 0.02)  # exactly at the margin is kept
    assert below_peers(0.69, peers, 75.0, 0.0)
    assert not below_peers(0.4, peers, 0.0, 0.0)


@pytest.mark.parametrize(
    ("pruner", "label"),
    [
        (optuna.pruners.MedianPruner(), "median"),
        (optuna.pruners.PercentilePruner(25.0), "percentile"),
        (optuna.pruners.SuccessiveHalvingPruner(), "successive_halving"),
        (optuna.pruners.HyperbandPruner(), "hyperband"),
        (optuna.pruners.NopPruner(), "nop"),
    ],
)
def test_pruner_label(pruner: optuna.pruners.BasePruner, label: str) -> None:
    assert pruner_label(pruner) == label


# --------------------------------------------------------------------------- helpers


def lrrt_trial(
    study: optuna.Study,
    score: float,
    *,
    group: str = GROUP,
    num_classes: int = 10,
    diverged: bool = False,
    usable: float = 1.0,
    has_bounds: bool = True,
    unstable: bool = False,
    margin: float = 0.1,
) -> optuna.Trial:
    """Ask a trial and set the attrs the objective sets, then report the LRRT step."""
    trial = study.ask()
    TrialRecorder(trial).range_test(
        summary(score, group=group, num_classes=num_classes, diverged=diverged, usable=usable,
                has_bounds=has_bounds, unstable=unstable),
        CurvePoints((), (), ()), n_params=1)
    trial.report(score, LRRT_STEP)
    return trial


def summary(score: float, *, group: str = GROUP, num_classes: int = 10, diverged: bool = False,
            usable: float = 1.0, has_bounds: bool = True, unstable: bool = False
            ) -> LRRTSummary:
    """An LRRT summary as the objective records it."""
    return LRRTSummary(score=score, group=group, num_classes=num_classes, diverged=diverged,
                       divergence="non-finite loss at step 3" if diverged else None,
                       completed_fraction=usable,
                       bounds=(1e-3, 4e-3) if has_bounds else None, unstable=unstable,
                       disagreement=12.0 if unstable else 1.0)


def verdict(study: optuna.Study, trial: optuna.Trial) -> str | None:
    """Ask the study's pruner, finish the trial the way the objective would, give the reason."""
    pruner = study.pruner
    assert isinstance(pruner, LRRTPruner)
    # Asked once, as the objective does: SuccessiveHalving and Hyperband record rung
    # promotions when asked, so a second question can get another answer.
    found = pruner.verdict(study, frozen_trial(trial))
    if found is not None:
        study.tell(trial, state=TrialState.PRUNED)
        return found.reason
    return None


def lrrt_study(**options: object) -> optuna.Study:
    return optuna.create_study(direction="maximize", pruner=LRRTPruner(None, GateRules(**options)))


def add_peers(study: optuna.Study, scores: list[float], group: str = GROUP) -> None:
    for score in scores:
        trial = lrrt_trial(study, score, group=group)
        study.tell(trial, score)


# --------------------------------------------------------------------------- the LRRT step


def test_a_good_trial_is_kept() -> None:
    study = lrrt_study()
    assert verdict(study, lrrt_trial(study, 0.5)) is None


def test_chance_level_is_pruned() -> None:
    study = lrrt_study()
    assert verdict(study, lrrt_trial(study, 0.12)) == CHANCE_LEVEL
    # just above the 10-class threshold 0.19 is learning
    assert verdict(study, lrrt_trial(study, 0.195)) is None


def test_chance_level_depends_on_the_number_of_classes() -> None:
    study = lrrt_study()
    assert verdict(study, lrrt_trial(study, 0.3, num_classes=2)) == CHANCE_LEVEL
    assert verdict(study, lrrt_trial(study, 0.3, num_classes=100)) is None


def test_a_diverged_test_that_never_learned_is_diverged() -> None:
    study = lrrt_study()
    assert verdict(study, lrrt_trial(study, 0.1, diverged=True)) == DIVERGED


def test_a_test_that_diverged_too_early_is_diverged_even_if_it_scored() -> None:
    study = lrrt_study(min_usable_fraction=0.05)
    assert verdict(study, lrrt_trial(study, 0.6, diverged=True, usable=0.01)) == DIVERGED
    # diverging late, after learning, with usable bounds: kept (bounds come from before)
    assert verdict(study, lrrt_trial(study, 0.6, diverged=True, usable=0.5)) is None


def test_a_diverged_test_without_bounds_is_diverged() -> None:
    study = lrrt_study()
    trial = lrrt_trial(study, 0.6, diverged=True, usable=0.5, has_bounds=False)
    assert verdict(study, trial) == DIVERGED


def test_no_bounds_rejects_even_without_divergence() -> None:
    study = lrrt_study()
    assert verdict(study, lrrt_trial(study, 0.6, has_bounds=False)) == DIVERGED


def test_unstable_is_pruned_only_when_asked() -> None:
    lenient = lrrt_study(prune_unstable=False)
    assert verdict(lenient, lrrt_trial(lenient, 0.6, unstable=True)) is None
    strict = lrrt_study(prune_unstable=True)
    assert verdict(strict, lrrt_trial(strict, 0.6, unstable=True)) == UNSTABLE
    assert verdict(strict, lrrt_trial(strict, 0.6, unstable=False)) is None


def probe(study: optuna.Study, score: float) -> str | None:
    """The verdict on a trial that then fails, so that it is nobody's peer afterwards."""
    trial = lrrt_trial(study, score)
    reason = verdict(study, trial)
    if reason is None:
        study.tell(trial, state=TrialState.FAIL)
    return reason


def test_below_peers_waits_for_warmup_learned_peers_of_the_same_group() -> None:
    study = lrrt_study(warmup_trials=4, percentile=25.0, peer_margin=0.02,
                       peer_rejection=True)
    add_peers(study, [0.8, 0.8, 0.8])
    # three peers: not enough to judge
    assert probe(study, 0.5) is None
    # peers of another group and peers at chance do not count
    add_peers(study, [0.8, 0.8], group=OTHER_GROUP)
    add_peers(study, [0.1, 0.1])
    assert probe(study, 0.5) is None
    # the fourth learned peer of the group: now 0.5 is far below the 25th percentile
    add_peers(study, [0.8])
    assert probe(study, 0.5) == BELOW_PEERS
    # close to the peers is kept
    assert probe(study, 0.79) is None


def test_kept_trials_count_as_peers_while_running() -> None:
    study = lrrt_study(warmup_trials=2, peer_rejection=True)
    running = [lrrt_trial(study, 0.8), lrrt_trial(study, 0.8)]
    assert all(verdict(study, t) is None for t in running)  # still running, not told
    assert verdict(study, lrrt_trial(study, 0.4)) == BELOW_PEERS


def test_a_trial_pruned_below_peers_still_counts_as_a_peer() -> None:
    study = lrrt_study(warmup_trials=1, peer_margin=0.0, percentile=50.0, peer_rejection=True)
    add_peers(study, [0.9])
    assert verdict(study, lrrt_trial(study, 0.5)) == BELOW_PEERS  # pruned, but learned
    # peers now 0.9 and 0.5: median 0.7
    assert verdict(study, lrrt_trial(study, 0.65)) == BELOW_PEERS
    assert verdict(study, lrrt_trial(study, 0.75)) is None


def test_warmup_zero_still_needs_one_peer() -> None:
    study = lrrt_study(warmup_trials=0, peer_rejection=True)
    assert verdict(study, lrrt_trial(study, 0.3)) is None


def test_a_trial_without_lrrt_attrs_is_not_judged() -> None:
    study = lrrt_study()
    trial = study.ask()
    trial.report(0.0, LRRT_STEP)
    assert verdict(study, trial) is None


def test_nothing_reported_means_no_pruning() -> None:
    study = lrrt_study()
    assert not study.ask().should_prune()


def test_a_verdict_carries_its_evidence() -> None:
    study = lrrt_study()
    trial = lrrt_trial(study, 0.141)
    found = study.pruner.verdict(study, frozen_trial(trial))
    assert found is not None and found.reason == CHANCE_LEVEL
    assert found.evidence == {"score": 0.141, "threshold": pytest.approx(0.19)}
    assert "0.141 < 0.190" in found.detail


def test_should_prune_agrees_with_the_verdict_at_the_lrrt_step() -> None:
    study = lrrt_study()
    for score in (0.1, 0.6):
        trial = lrrt_trial(study, score)
        found = study.pruner.verdict(study, frozen_trial(trial))
        assert trial.should_prune() == (found is not None)


def test_the_gate_is_a_pure_function_of_summary_peers_and_rules() -> None:
    rules = GateRules(warmup_trials=2, peer_rejection=True)
    good = summary(0.6)
    assert lrrt_verdict(good, [], rules) is None
    assert lrrt_verdict(summary(0.1), [], rules).reason == CHANCE_LEVEL
    assert lrrt_verdict(summary(0.5), [0.7, 0.8], rules).reason == BELOW_PEERS
    assert lrrt_verdict(summary(0.5), [0.7], rules) is None  # not enough peers yet
    assert lrrt_verdict(summary(0.5, diverged=True, usable=0.01), [], rules).reason == DIVERGED
    assert lrrt_verdict(summary(0.5, has_bounds=False), [], rules).reason == DIVERGED
    assert lrrt_verdict(summary(0.6, unstable=True), [], rules) is None
    unstable = lrrt_verdict(summary(0.6, unstable=True), [], GateRules(prune_unstable=True))
    assert unstable.reason == UNSTABLE and unstable.evidence == {"disagreement": 12.0}


def test_peers_do_not_reject_by_default() -> None:
    """A design that trains, only worse than its peers, is the after-LRRT pruner's to rank:
    at the gate it would count as a false rejection (issue 9)."""
    assert lrrt_verdict(summary(0.5), [0.8, 0.8, 0.8, 0.8, 0.8], GateRules()) is None
    study = lrrt_study(warmup_trials=1)
    add_peers(study, [0.9, 0.9])
    assert verdict(study, lrrt_trial(study, 0.3)) is None


def test_chance_level_needs_a_ramp_that_tested_where_the_design_trains() -> None:
    slow = replace(summary(0.12), limit_found=False, lr_range=(1e-4, 1e-2))
    assert not ramp_covered_bounds(slow)
    assert lrrt_verdict(slow, [], GateRules()) is None  # still improving at the ramp's end
    assert lrrt_verdict(slow, [], GateRules(chance_needs_limit=False)).reason == CHANCE_LEVEL
    below = replace(summary(0.12), limit_found=True, lr_range=(1e-2, 1e-1),
                    bounds=(1e-3, 4e-3))  # its bounds lie under the first LR tested
    assert lrrt_verdict(below, [], GateRules()) is None
    tested = replace(summary(0.12), limit_found=True, lr_range=(1e-4, 1e-2))
    assert ramp_covered_bounds(tested)
    assert lrrt_verdict(tested, [], GateRules()).reason == CHANCE_LEVEL
    still = replace(slow, weight_change=1e-8)  # rates too small to move the weights:
    assert not ramp_covered_bounds(still)  # uncovered, yet judged by the weights alone
    assert lrrt_verdict(still, [], GateRules()).reason == CHANCE_LEVEL
    noise = replace(slow, score=0.25, weight_change=WEIGHTS_STILL / 2)  # an untrained
    assert lrrt_verdict(noise, [], GateRules()).reason == CHANCE_LEVEL  # net's lucky batches
    assert lrrt_verdict(replace(noise, weight_change=WEIGHTS_STILL * 2), [], GateRules()) is None
    assert lrrt_verdict(noise, [], GateRules(chance_needs_limit=False)) is None  # old gate
    # movement is judged per STILL_STEPS batches: a short ramp moves the weights less
    short = replace(noise, weight_change=WEIGHTS_STILL * 0.6, ramp_steps=STILL_STEPS // 4)
    assert lrrt_verdict(short, [], GateRules()) is None  # 2.4x the threshold per 100
    still = lrrt_verdict(replace(short, ramp_steps=STILL_STEPS), [], GateRules())
    assert still.reason == CHANCE_LEVEL and "per 100 batches" in still.detail
    assert still.evidence["weight_movement"] == pytest.approx(WEIGHTS_STILL * 0.6)
    assert still.evidence["weights_still"] == WEIGHTS_STILL
    legacy = summary(0.12)  # recorded before limit_found existed: judged as before
    assert lrrt_verdict(legacy, [], GateRules()).reason == CHANCE_LEVEL


# --------------------------------------------------------------------------- training steps


def finished_trial(study: optuna.Study, lrrt: float, epochs: list[float]) -> None:
    trial = lrrt_trial(study, lrrt)
    for epoch, value in enumerate(epochs, start=1):
        trial.report(value, epoch)
    study.tell(trial, max(epochs))


def median_study(startup: int = 2, warmup_steps: int = 1) -> optuna.Study:
    wrapped = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup_steps)
    return optuna.create_study(direction="maximize", pruner=LRRTPruner(wrapped))


def test_after_the_lrrt_the_wrapped_median_pruner_decides() -> None:
    study = median_study()
    for _ in range(3):
        finished_trial(study, 0.5, [0.6, 0.7, 0.8])
    trial = lrrt_trial(study, 0.5)
    assert verdict(study, trial) is None  # still running: judged again below
    trial = lrrt_trial(study, 0.5)
    assert not trial.should_prune()
    trial.report(0.1, 1)
    trial.report(0.1, 2)
    assert verdict(study, trial) == "median"


def test_a_good_training_trial_is_not_pruned_by_the_median() -> None:
    study = median_study()
    for _ in range(3):
        finished_trial(study, 0.5, [0.6, 0.7, 0.8])
    trial = lrrt_trial(study, 0.5)
    trial.report(0.65, 1)
    trial.report(0.75, 2)
    assert verdict(study, trial) is None


def test_the_lrrt_score_does_not_shield_a_trial_from_the_median() -> None:
    """The wrapped pruner judges training epochs: a high LRRT score at step 0 (a training
    accuracy under the ramp) must not count as the trial's best intermediate value."""
    study = median_study()
    for _ in range(3):
        finished_trial(study, 0.5, [0.6, 0.7, 0.8])
    trial = lrrt_trial(study, 0.95)
    trial.report(0.1, 1)
    trial.report(0.1, 2)
    assert verdict(study, trial) == "median"
    assert trial.number in {t.number for t in study.get_trials(states=(TrialState.PRUNED,))}


def test_the_wrapped_pruner_is_not_asked_at_the_lrrt_step() -> None:
    study = median_study(startup=0, warmup_steps=0)
    for _ in range(3):
        finished_trial(study, 0.9, [0.9])
    # far below the peers' step-0 median (the median pruner alone would prune it), but
    # above chance and before the peers' warm-up: the LRRT verdict alone keeps it
    assert study.pruner.wrapped.prune(study, lrrt_trial(study, 0.3).study.trials[-1])
    study.pruner.rules = dataclasses.replace(study.pruner.rules, warmup_trials=100)
    assert verdict(study, lrrt_trial(study, 0.3)) is None


def test_without_a_wrapped_pruner_training_steps_are_never_pruned() -> None:
    study = lrrt_study()
    for _ in range(5):
        finished_trial(study, 0.5, [0.6, 0.7, 0.8])
    trial = lrrt_trial(study, 0.5)
    for epoch in (1, 2, 3):
        trial.report(0.0, epoch)
        assert not trial.should_prune()
        assert study.pruner.verdict(study, frozen_trial(trial)) is None


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"chance_margin": 1.0}, "chance_margin"),
        ({"chance_margin": -0.1}, "chance_margin"),
        ({"percentile": 101.0}, "percentile"),
        ({"peer_margin": -0.5}, "peer_margin"),
        ({"warmup_trials": -1}, "warmup_trials"),
        ({"min_usable_fraction": 1.0}, "min_usable_fraction"),
    ],
)
def test_constructor_errors_name_the_argument_and_value(options: dict, named: str) -> None:
    with pytest.raises(ValueError) as raised:
        GateRules(**options)
    message = str(raised.value)
    assert named in message
    assert str(next(iter(options.values()))) in message


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("percentile", optuna.pruners.PercentilePruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
    ],
)
def test_make_wrapped_pruner(name: str, kind: type) -> None:
    pruner = make_wrapped_pruner(name, startup_trials=3, warmup_epochs=1)
    assert isinstance(pruner, kind)
    assert pruner_label(pruner) == name


def test_make_wrapped_pruner_none_and_unknown() -> None:
    assert make_wrapped_pruner("none", startup_trials=3, warmup_epochs=1) is None
    with pytest.raises(ValueError, match="asha"):
        make_wrapped_pruner("asha", startup_trials=3, warmup_epochs=1)


def test_wrapped_median_warmup_counts_the_lrrt_step() -> None:
    """warmup_epochs=1: epoch 1 is never pruned, epoch 2 can be (steps are 0=LRRT, 1, 2...)."""
    wrapped = make_wrapped_pruner("median", startup_trials=1, warmup_epochs=1)
    study = optuna.create_study(direction="maximize", pruner=LRRTPruner(wrapped))
    finished_trial(study, 0.5, [0.6, 0.7])
    trial = lrrt_trial(study, 0.5)
    trial.report(0.0, 1)
    assert not trial.should_prune()
    trial.report(0.0, 2)
    assert verdict(study, trial) == "median"


@pytest.mark.parametrize("name", ["median", "percentile", "successive_halving", "hyperband"])
def test_every_wrapped_pruner_runs_behind_the_lrrt_step(name: str) -> None:
    wrapped = make_wrapped_pruner(name, startup_trials=1, warmup_epochs=0)
    study = optuna.create_study(direction="maximize", pruner=LRRTPruner(wrapped))
    outcomes = []
    for number in range(8):
        trial = lrrt_trial(study, 0.6)
        assert not trial.should_prune()
        pruned = False
        for epoch in range(1, 6):
            # later trials are worse: some must be pruned, by the wrapped pruner
            trial.report(0.9 - 0.1 * number + 0.01 * epoch, epoch)
            reason = verdict(study, trial)
            if reason is not None:
                pruned = True
                assert reason == name
                break
        if not pruned:
            study.tell(trial, 0.9 - 0.1 * number + 0.05)
        outcomes.append(pruned)
    assert not outcomes[0]
    assert any(outcomes)


# --------------------------------------------------------------------------- multi-objective


def test_the_gate_judges_a_multi_objective_trial_without_reported_steps() -> None:
    """Optuna refuses ``report`` in a multi-objective study: the objective asks ``gate``,
    which reads the recorded range test alone, never the wrapped pruner."""
    study = optuna.create_study(directions=["maximize", "minimize"],
                                pruner=LRRTPruner(optuna.pruners.MedianPruner()))
    pruner = study.pruner
    assert isinstance(pruner, LRRTPruner)
    for score, expected in ((0.12, CHANCE_LEVEL), (0.6, None)):
        trial = study.ask()
        TrialRecorder(trial).range_test(summary(score), CurvePoints((), (), ()), n_params=1)
        with pytest.raises(NotImplementedError):
            trial.report(score, LRRT_STEP)
        frozen = frozen_trial(trial)
        assert frozen.last_step is None and pruner.verdict(study, frozen) is None
        found = pruner.gate(study, frozen)
        assert (found.reason if found else None) == expected
        study.tell(trial, [score, 10.0] if expected is None else None,
                   state=TrialState.COMPLETE if expected is None else TrialState.PRUNED)
    trial = study.ask()  # nothing recorded yet: nothing to judge
    assert pruner.gate(study, frozen_trial(trial)) is None


# --------------------------------------------------------------------------- rung-0 promotion


@pytest.mark.parametrize(("score", "others", "eta", "promoted_"), [
    (0.3, [], 3, True),                   # the first design always goes on
    (0.3, [0.9, 0.8], 3, False),          # 3 tests: only the best one, 0.9, goes on
    (0.5, [0.9, 0.8, 0.7, 0.6, 0.4], 3, False),  # 6 tests: the top 2 go on
    (0.8, [0.9, 0.8, 0.7, 0.6, 0.4], 3, True),   # a tie with the cut goes on
    (0.5, [0.9, 0.8, 0.7, 0.6, 0.4], 2, False),  # top 3
    (0.7, [0.9, 0.8, 0.6, 0.5, 0.4], 2, True),
])
def test_promotion_keeps_the_top_third_of_range_test_scores(
        score: float, others: list[float], eta: int, promoted_: bool) -> None:
    from search.method.pruner import promoted

    assert promoted(score, others, eta) is promoted_


def test_promotion_prunes_a_design_the_gate_keeps_as_not_promoted() -> None:
    from search.record import NOT_PROMOTED

    study = lrrt_study(promotion_eta=3)
    add_peers(study, [0.8, 0.75, 0.7, 0.65, 0.6])
    assert verdict(study, lrrt_trial(study, 0.5)) == NOT_PROMOTED  # 6 tests, top 2 go on
    assert verdict(study, lrrt_trial(study, 0.9)) is None
    assert verdict(study, lrrt_trial(study, 0.1)) == CHANCE_LEVEL  # the gate speaks first
    assert verdict(lrrt_study(), lrrt_trial(lrrt_study(), 0.5)) is None  # off by default


def test_an_lr_free_test_is_judged_only_on_divergence_and_still_weights() -> None:
    from search.method.lrrt.result import LR_FREE_RULE

    rules = GateRules()
    low = replace(summary(0.12), bound_rule=LR_FREE_RULE, weight_change=0.5, ramp_steps=100)
    assert lrrt_verdict(low, [], rules) is None  # at chance, but its ramp is no LR search
    still = replace(low, weight_change=WEIGHTS_STILL / 10)
    assert lrrt_verdict(still, [], rules).reason == CHANCE_LEVEL
    diverged = replace(summary(0.12, diverged=True), bound_rule=LR_FREE_RULE)
    assert lrrt_verdict(diverged, [], rules).reason == DIVERGED


def test_a_ramp_run_again_below_its_range_is_judged_on_what_it_measured() -> None:
    rules = GateRules()
    below = replace(summary(0.12), extension="down", lr_range=(0.005, 0.5),
                    bounds=(0.00031, 0.00125), limit_found=True)
    assert lrrt_verdict(below, [], rules).reason == DIVERGED  # its limit at its first rate
    found = replace(below, bounds=(0.005, 0.02), score=0.6)
    assert lrrt_verdict(found, [], rules) is None  # the second ramp found where it trains
    assert lrrt_verdict(replace(below, extension=None, score=0.6), [], rules) is None


def test_a_ramp_run_again_below_its_range_at_chance_is_rejected_without_a_limit() -> None:
    """Adam over [1, 10] in the demo: the first ramp diverged at once, the second (0.01 to
    1) killed the network and its loss stayed flat at chance, so it found no limit and read
    bounds of 0.125..0.5. Without a limit a chance-level score was not judged (a slow starter
    may still learn past its ramp's end) and the design trained to 0.10. Above a second ramp
    lie the rates the first one saw diverge: nothing is left past its end."""
    rules = GateRules()
    dead = replace(summary(0.123), extension="down", lr_range=(0.01, 1.0),
                   bounds=(0.125, 0.5), limit_found=False, weight_change=0.9,
                   ramp_steps=95)
    assert lrrt_verdict(dead, [], rules).reason == CHANCE_LEVEL
    slow = replace(dead, extension=None)  # the same curve, not below its range: a slow starter
    assert lrrt_verdict(slow, [], rules) is None
    assert lrrt_verdict(replace(dead, score=0.6), [], rules) is None  # it learned there
