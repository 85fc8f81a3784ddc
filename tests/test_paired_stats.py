"""Paired comparisons with the baseline: Student's t, the paired t-test,
Holm's adjustment, the simultaneous intervals and the verdicts of a table,
against SciPy and against known tables and definitions."""

import itertools
import math
import statistics

import numpy as np
import pytest

from keras_sugar.experiments import comparison_table
from keras_sugar.experiments import paired_stats

stats = pytest.importorskip("scipy.stats")  # scikit-learn brings SciPy.

DFS = [1, 2, 3, 4, 5, 8, 9, 19, 29, 30, 31, 40, 99]


@pytest.mark.parametrize("df", DFS)
def test_two_sided_p_matches_scipy(df):
    for t in (0.0, 0.1, 0.5, 1.0, 2.0, 2.7764, 4.0, 10.0, -3.0):
        assert paired_stats.t_two_sided_p(t, df) == pytest.approx(
            2 * stats.t.sf(abs(t), df), rel=1e-9, abs=1e-13)
    assert paired_stats.t_two_sided_p(math.inf, df) == 0.0


@pytest.mark.parametrize("df", DFS)
def test_quantile_matches_scipy(df):
    for q in (0.5, 0.9, 0.975, 0.99375, 0.999):
        assert paired_stats.t_quantile(q, df) == pytest.approx(
            stats.t.ppf(q, df), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_degrees_of_freedom_are_checked(bad):
    with pytest.raises(ValueError, match=f"df must be an integer >= 1. "
                       f"Received: df={bad!r}"):
        paired_stats.t_two_sided_p(1.0, bad)


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_paired_test_is_scipys_paired_t_test(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        base = rng.normal(0.7, 0.08, n)
        values = base + rng.normal(0.02, 0.05, n)
        test = paired_stats.paired_test(dict(enumerate(values)),
                                        dict(enumerate(base)))
        reference = stats.ttest_rel(values, base)
        assert test.n == n
        assert test.mean == pytest.approx(np.mean(values - base))
        assert test.p == pytest.approx(reference.pvalue, rel=1e-9)
        low, high = test.interval(0.95)
        ref_low, ref_high = reference.confidence_interval(0.95)
        assert (low, high) == pytest.approx((ref_low, ref_high), rel=1e-9)


def test_only_shared_seeds_are_paired():
    test = paired_stats.paired_test({0: 0.5, 1: 0.6, 5: 0.9},
                                    {0: 0.4, 1: 0.45, 2: 0.1})
    assert test.n == 2 and test.mean == pytest.approx(0.125)
    one = paired_stats.paired_test({0: 0.5}, {0: 0.4})
    assert one.n == 1 and one.p is None and one.interval(0.95) is None
    assert paired_stats.paired_test({0: None}, {0: 0.4}) == (
        paired_stats.PairedTest())
    # Equal differences: the t statistic is infinite (or 0/0 for none).
    assert paired_stats.paired_test({0: 2, 1: 3}, {0: 1, 1: 2}).p == 0.0
    assert paired_stats.paired_test({0: 1, 1: 2}, {0: 1, 1: 2}).p == 1.0


# Known tables: Holm (1979) as Wikipedia's article on the Holm-Bonferroni
# method works it (alpha 0.05: H1 and H4 rejected, H2 and H3 not), and
# adjusted values worked by hand from the definition.
@pytest.mark.parametrize("p, adjusted", [
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
    ([0.01, 0.02, 0.03, 0.04, 0.05], [0.05, 0.08, 0.09, 0.09, 0.09]),
    ([0.5, None, 0.01], [0.5, None, 0.02]),
    ([0.3, 0.9], [0.6, 0.9]),
    ([0.04], [0.04]),
])
def test_holm_on_known_tables(p, adjusted):
    got = paired_stats.holm(p)
    assert [g is None for g in got] == [a is None for a in adjusted]
    assert [g for g in got if g is not None] == pytest.approx(
        [a for a in adjusted if a is not None])


def _closed_testing(p):
    """Holm is the closed test of Bonferroni's local tests: the adjusted
    p-value of H_i is the largest Bonferroni p-value of every
    intersection containing it."""
    m = len(p)
    return [max(min(1.0, len(s) * min(p[j] for j in s))
                for size in range(1, m + 1)
                for s in itertools.combinations(range(m), size) if i in s)
            for i in range(m)]


def test_holm_is_the_closed_bonferroni_test():
    rng = np.random.default_rng(0)
    for m in range(1, 7):
        for _ in range(50):
            p = list(rng.uniform(0, 0.2, m) ** 2)
            assert paired_stats.holm(p) == pytest.approx(_closed_testing(p))


@pytest.mark.parametrize("mean, p, expected", [
    (0.02, 0.01, "better"), (-0.02, 0.01, "worse"),
    (0.02, 0.05, "better"), (0.02, 0.051, "no evidence"),
    (0.02, None, "needs 2+ shared seeds"),
])
def test_verdicts(mean, p, expected):
    assert paired_stats.verdict(mean, p, 0.05) == expected


def _runs(spec, accuracies, dead):
    return [{"activation": spec, "seed": seed, "test_accuracy": a,
             "dead_units": d, "sparsity": 0.5, "seconds_per_epoch": 1.0}
            for seed, (a, d) in enumerate(zip(accuracies, dead))]


def test_summary_pairs_every_activation_with_the_first():
    runs = (_runs("relu", [0.70, 0.72, 0.74], [0.10, 0.12, 0.11])
            + _runs("sugar:bsilu", [0.80, 0.83, 0.84], [0.02, 0.03, 0.02])
            + _runs("gelu", [0.71, 0.69, 0.76], [None] * 3))
    relu, bsilu, gelu = comparison_table.summarize(runs)
    assert relu["accuracy_delta"] == 0.0
    assert relu["accuracy_delta_ci"] == [0.0, 0.0]
    assert relu["dead_units_delta_ci"] == [0.0, 0.0]
    deltas = [0.10, 0.11, 0.10]
    raw = stats.ttest_rel([0.80, 0.83, 0.84], [0.70, 0.72, 0.74]).pvalue
    assert bsilu["accuracy_p"] == pytest.approx(raw)
    # Two accuracy comparisons: Holm and the 97.5% intervals of each.
    gelu_raw = stats.ttest_rel([0.71, 0.69, 0.76], [0.70, 0.72, 0.74]).pvalue
    first, second = sorted([raw, gelu_raw])
    assert bsilu["accuracy_p_holm"] == pytest.approx(
        min(1, 2 * first if raw == first else max(2 * first, second)))
    half = (stats.t.ppf(1 - 0.05 / 4, 2) * statistics.stdev(deltas)
            / math.sqrt(3))
    assert bsilu["accuracy_delta"] == pytest.approx(statistics.fmean(deltas))
    assert bsilu["accuracy_delta_ci"] == pytest.approx(
        [statistics.fmean(deltas) - half, statistics.fmean(deltas) + half])
    assert bsilu["accuracy_verdict"] == "better"
    # Dead units: GELU has none, so the family is bsilu alone.
    assert bsilu["dead_units_p_holm"] == pytest.approx(
        bsilu["dead_units_p"])
    assert bsilu["dead_units_verdict"] == "fewer"
    assert bsilu["test_accuracy"] == pytest.approx((0.80 + 0.83 + 0.84) / 3)
    assert bsilu["test_accuracy_std"] == pytest.approx(
        statistics.pstdev([0.80, 0.83, 0.84]))
    assert gelu["accuracy_verdict"] == "no evidence"
    assert gelu["dead_units"] is None and gelu["dead_units_delta"] is None
    table = comparison_table.format_table([relu, bsilu, gelu])
    assert "vs relu [95% CI]" in table and "p (Holm)" in table
    assert f"+{100 * statistics.fmean(deltas):.2f}" in table
    assert " fewer" in table and " no evidence" in table
    assert comparison_table.family_sizes([relu, bsilu, gelu]) == {
        "accuracy": 2, "dead_units": 1}


def test_a_verdict_of_one_comparison_may_not_hold_in_a_family():
    # Four activations against relu over 5 seeds. sugar:a alone would be
    # "better" (p = 0.02 < 0.05), but with four comparisons Holm asks the
    # smallest p-value to be below 0.05 / 4: the table says no evidence.
    rng = np.random.default_rng(1)
    relu = rng.normal(0.7, 0.05, 5)
    offsets = {"sugar:a": [0.06, 0.01, 0.04, 0.08, 0.03],
               "sugar:b": [0.02, -0.03, 0.01, 0.0, -0.01],
               "sugar:c": [-0.01, 0.02, 0.0, 0.01, -0.02],
               "sugar:d": [0.03, -0.02, 0.01, -0.01, 0.0]}
    runs = _runs("relu", relu, [0.1] * 5)
    for name, offset in offsets.items():
        runs += _runs(name, relu + offset, [0.1] * 5)
    summary = comparison_table.summarize(runs)
    a = summary[1]
    raw = stats.ttest_rel(relu + offsets["sugar:a"], relu).pvalue
    assert 0.0125 < raw < 0.05 and a["accuracy_p"] == pytest.approx(raw)
    assert a["accuracy_p_holm"] == pytest.approx(4 * raw)
    assert a["accuracy_verdict"] == "no evidence"
    # The same comparison alone, or at --alpha 0.1, is a finding.
    alone = comparison_table.summarize(runs[:10])[1]
    assert alone["accuracy_verdict"] == "better"
    loose = comparison_table.summarize(runs, alpha=0.1)[1]
    assert loose["accuracy_verdict"] == "better"
    # Its interval is the simultaneous one: 1 - 0.05 / 4 each.
    low, high = a["accuracy_delta_ci"]
    expected = stats.ttest_rel(relu + offsets["sugar:a"],
                               relu).confidence_interval(1 - 0.05 / 4)
    assert (low, high) == pytest.approx(tuple(expected))
    # Equal dead units everywhere: no evidence, not an error.
    assert a["dead_units_verdict"] == "no evidence"
    record = comparison_table.statistics_record(summary, 0.05)
    assert record["method"] == "holm" and record["alpha"] == 0.05
    assert record["comparisons"] == {"accuracy": 4, "dead_units": 4}
    note = comparison_table.note(summary, 0.05)
    assert "Holm-adjusted" in note and "(4 for accuracy and 4 for dead" in (
        note.replace("\n", " "))


def test_dead_unit_verdicts_say_fewer_or_more():
    runs = (_runs("relu", [0.7] * 3, [0.10, 0.12, 0.11])
            + _runs("sugar:elu", [0.7] * 3, [0.02, 0.03, 0.02])
            + _runs("sugar:nelu", [0.7] * 3, [0.30, 0.33, 0.31]))
    _, elu, nelu = comparison_table.summarize(runs)
    assert elu["dead_units_verdict"] == "fewer"
    assert nelu["dead_units_verdict"] == "more"
