"""utils.customization.early_stopping: the seed's 7-epoch table and the edge cases around it."""

import math

import pytest

from utils.customization import early_stopping

SEED = [0.9, 0.8, 0.7, 0.66, 0.64, 0.65, 0.65]


def test_seed_scenario_threshold_0_patience_2_runs_all_epochs():
    assert early_stopping(SEED, 0.0, 2) == (7, 5)


def test_seed_scenario_threshold_005_patience_1_stops_at_4():
    assert early_stopping(SEED, 0.05, 1) == (4, 4)


def test_first_epoch_always_improves_and_best_is_earliest_lowest():
    assert early_stopping([1.0], 0.5, 1) == (1, 1)
    # a tie with the lowest loss is not an improvement; the earliest epoch stays best
    assert early_stopping([1.0, 0.5, 0.5, 0.5], 0.0, 2) == (4, 2)


def test_improvement_is_against_the_lowest_of_all_earlier_epochs():
    # epoch 3 beats epoch 2 but not epoch 1 (the lowest so far): not an improvement
    assert early_stopping([0.5, 0.9, 0.8, 0.85], 0.0, 2) == (3, 1)


def test_threshold_is_strict_and_robust_to_float_noise():
    # 0.9 - 0.8 is 0.0999... in binary; it counts as exactly 0.1, which is not > 0.1
    assert early_stopping([0.9, 0.8], 0.1, 1) == (2, 2)
    assert early_stopping([0.9, 0.79], 0.1, 1) == (2, 2)
    assert early_stopping([0.9, 0.8, 0.5], 0.1, 1) == (2, 2)


def test_patience_counts_consecutive_non_improving_epochs():
    losses = [1.0, 1.1, 0.9, 1.0, 1.0, 0.2]
    assert early_stopping(losses, 0.0, 2) == (5, 3)
    assert early_stopping(losses, 0.0, 3) == (6, 6)


def test_nan_loss_never_improves():
    assert early_stopping([1.0, math.nan, 0.5], 0.0, 2) == (3, 3)
    assert early_stopping([1.0, math.nan], 0.0, 1) == (2, 1)


@pytest.mark.parametrize("args", [([], 0.0, 1), ([1.0], -0.1, 1), ([1.0], 0.0, 0), ([1.0], 0.0, 1.5)])
def test_bad_arguments_are_refused(args):
    with pytest.raises(ValueError):
        early_stopping(*args)


def test_infinite_losses_follow_the_formula():
    # a diverged run: inf - inf is not an improvement, so patience runs out; a finite loss after it improves
    assert early_stopping([math.inf, math.inf, 0.5], 0.0, 2) == (2, 1)
    assert early_stopping([math.inf, 0.5], 0.0, 2) == (2, 2)


def test_inputs_of_any_numeric_kind():
    import numpy as np

    seed = [0.9, 0.8, 0.7, 0.66, 0.64, 0.65, 0.65]
    assert early_stopping(np.array(seed), np.float64(0.0), np.int64(2)) == (7, 5)
    assert early_stopping(tuple(seed), 0.05, 1) == (4, 4)
    assert early_stopping([3, 2, 2, 2], 0, 2) == (4, 2)  # ints; a tie is no improvement
    assert early_stopping([1.0, 0.9], 0.0, 10) == (2, 2)  # patience longer than the run: all epochs run
