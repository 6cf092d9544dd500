"""The shipped RLHF task: its hidden utility, its annotators and its noisy preference labels."""

import numpy as np
import pytest

from rlexp.lm.task import ArithmeticTask, best_accuracy

TASK = ArithmeticTask()


def test_the_utility_prefers_the_right_sum_said_alone():
    p = "Q: 7+12=A:"
    assert TASK.truth(p) == 19
    assert TASK.utility(p, "19") == 1.0
    assert TASK.utility(p, "19 ok") == pytest.approx(1.0 - 3 * TASK.padding_penalty)
    assert TASK.utility(p, "18") == TASK.near_miss_credit and TASK.utility(p, "21") == TASK.near_miss_credit / 2
    assert TASK.utility(p, "ok") == 0.0 and TASK.utility(p, "") == 0.0
    assert TASK.utility(p, "19") > TASK.utility(p, "19 ok") > TASK.utility(p, "19 is the sum, i think so") >= 0
    with pytest.raises(ValueError, match="not a prompt"):
        TASK.truth("7+12=")


def test_annotators_are_mostly_right_with_the_configured_mix():
    rng = np.random.default_rng(0)
    demos = TASK.demonstrations(4000, rng)
    gold = np.array([TASK.utility(p, a) for p, a in demos])
    concise = np.mean(gold == 1.0)
    assert abs(concise - TASK.annotator_correct) < 0.03
    padded = np.mean([a != str(TASK.truth(p)) and a.startswith(str(TASK.truth(p)) + " ") for p, a in demos])
    assert abs(padded - TASK.annotator_padded) < 0.03
    assert all(a and a.lstrip("-")[0].isdigit() for _, a in demos)


def test_preference_labels_follow_bradley_terry_and_bound_the_accuracy():
    rng = np.random.default_rng(1)
    pairs = TASK.preference_pairs(3000, rng)
    assert all(p.chosen != p.rejected for p in pairs)
    agree = np.mean([TASK.utility(p.prompt, p.chosen) >= TASK.utility(p.prompt, p.rejected) for p in pairs])
    best = best_accuracy(pairs)
    assert 0.6 < best < 1.0 and abs(agree - best) < 0.03  # labels agree with the utility as often as the bound says
    noiseless = ArithmeticTask(label_temperature=0.0).preference_pairs(500, np.random.default_rng(2))
    assert all(ArithmeticTask().utility(p.prompt, p.chosen) >= ArithmeticTask().utility(p.prompt, p.rejected)
               for p in noiseless)


def test_the_corpus_is_right_arithmetic_in_several_phrasings():
    lines = TASK.corpus(200, np.random.default_rng(3))
    sums = [ln for ln in lines if "+" in ln]
    assert sums and all(int(ln.split("=")[1]) == sum(map(int, ln.split("=")[0].split("+"))) for ln in sums)
    assert any(" plus " in ln for ln in lines) and any(ln.startswith("the sum of") for ln in lines)
