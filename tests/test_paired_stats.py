"""Paired differences from the baseline: the t quantiles, the interval
and the verdicts, against hand computations and SciPy."""

import math
import statistics

import pytest

from keras_sugar.experiments import comparison_table
from keras_sugar.experiments import paired_stats


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29, 30, 31, 40, 100, 1000])
def test_t_quantile_matches_scipy(df):
    stats = pytest.importorskip("scipy.stats")
    assert paired_stats.t_quantile_975(df) == pytest.approx(
        stats.t.ppf(0.975, df), abs=2e-4)


def test_interval_is_the_paired_t_interval_by_hand():
    values = {0: 0.80, 1: 0.90, 2: 0.75, 3: 0.70}
    baseline = {0: 0.70, 1: 0.72, 2: 0.74, 3: 0.71}
    deltas = [0.10, 0.18, 0.01, -0.01]
    mean = sum(deltas) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in deltas) / 3)
    half = 3.1824 * sd / 2  # t(0.975, df=3) * sd / sqrt(4)
    got_mean, (low, high), n = paired_stats.paired_difference(values,
                                                              baseline)
    assert n == 4
    assert got_mean == pytest.approx(mean)
    assert (low, high) == pytest.approx((mean - half, mean + half))


def test_only_shared_seeds_are_paired():
    mean, ci, n = paired_stats.paired_difference(
        {0: 0.5, 1: 0.6, 5: 0.9}, {0: 0.4, 1: 0.4, 2: 0.1})
    assert n == 2 and mean == pytest.approx(0.15)
    assert paired_stats.paired_difference({0: 0.5}, {0: 0.4})[1] is None
    assert paired_stats.paired_difference({0: None}, {0: 0.4}) == (
        None, None, 0)


@pytest.mark.parametrize("ci, higher_is_better, expected", [
    ((0.01, 0.03), True, "better"), ((-0.03, -0.01), True, "worse"),
    ((-0.01, 0.03), True, "no evidence either way"),
    ((0.01, 0.03), False, "worse"), ((-0.03, -0.01), False, "better"),
    (None, True, "needs 2+ shared seeds"),
])
def test_verdicts(ci, higher_is_better, expected):
    assert paired_stats.verdict(ci, higher_is_better) == expected


def _runs(spec, accuracies, dead):
    return [{"activation": spec, "seed": seed, "test_accuracy": a,
             "dead_units": d, "sparsity": 0.5, "seconds_per_epoch": 1.0}
            for seed, (a, d) in enumerate(zip(accuracies, dead))]


def test_summary_rows_pair_every_activation_with_the_first():
    runs = (_runs("relu", [0.70, 0.72, 0.74], [0.10, 0.12, 0.11])
            + _runs("sugar:bsilu", [0.80, 0.83, 0.84], [0.02, 0.03, 0.02])
            + _runs("gelu", [0.71, 0.69, 0.76], [None] * 3))
    relu, bsilu, gelu = comparison_table.summarize(runs)
    assert relu["accuracy_delta"] == 0.0
    assert relu["accuracy_delta_ci95"] == [0.0, 0.0]
    assert relu["dead_units_delta_ci95"] == [0.0, 0.0]
    deltas = [0.10, 0.11, 0.10]
    half = 4.3027 * statistics.stdev(deltas) / math.sqrt(3)
    assert bsilu["accuracy_delta"] == pytest.approx(statistics.fmean(deltas))
    assert bsilu["accuracy_delta_ci95"] == pytest.approx(
        [statistics.fmean(deltas) - half, statistics.fmean(deltas) + half])
    assert bsilu["accuracy_verdict"] == "better"
    assert bsilu["dead_units_verdict"] == "better"  # Fewer dead units.
    assert bsilu["test_accuracy"] == pytest.approx((0.80 + 0.83 + 0.84) / 3)
    assert bsilu["test_accuracy_std"] == pytest.approx(
        statistics.pstdev([0.80, 0.83, 0.84]))
    assert gelu["accuracy_verdict"] == "no evidence either way"
    assert gelu["dead_units"] is None and gelu["dead_units_delta"] is None
    table = comparison_table.format_table([relu, bsilu, gelu])
    assert "baseline" in table
    assert f"+{100 * statistics.fmean(deltas):.2f}" in table
    assert "no evidence either way" in table
