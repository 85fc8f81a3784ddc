"""Paired comparisons against a baseline over the same seeds, with the
error controlled over the whole family of comparisons.

Runs with the same seed start from the same initial weights and see the
same batches, so the per-seed difference removes what the seed does to
both; its spread over seeds is what decides whether a gap is real. Each
comparison is a paired t-test; a table of several comparisons with one
baseline makes its verdicts with Holm's step-down adjustment, so the chance
that any verdict of the family is wrong stays at most `alpha` whatever the
dependence between the comparisons (they share the baseline's runs). The
intervals are Bonferroni's simultaneous ones (each at level
`1 - alpha / m`), which cover every true difference of the family at once
with probability at least `1 - alpha`.

Why Holm: it needs no assumption about how the comparisons depend on each
other (Hochberg's and Dunnett's procedures do: positive dependence, equal
variances), and it finds at least every difference Bonferroni finds. A
permutation test cannot help with few seeds (5 seeds: the smallest
two-sided p-value of a sign-flip test is 1/16).

Standard library only: Student's t distribution for integer degrees of
freedom has a closed form (Abramowitz and Stegun 26.7.3-4).
"""

import dataclasses
import math
import statistics

BETTER = "better"
WORSE = "worse"
NO_EVIDENCE = "no evidence"
TOO_FEW = "needs 2+ shared seeds"
METHOD = "holm"


def t_two_sided_p(t, df):
    """The two-sided p-value `P(|T| >= |t|)` of Student's t with `df`
    (an integer >= 1) degrees of freedom, exact up to rounding.

    Example:

    >>> round(t_two_sided_p(2.7764451, 4), 6)
    0.05
    """
    _check_df(df)
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:  # Odd: A = (2/pi) (theta + sin cos (1 + 2/3 cos^2 + ...)).
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= cos2 * (2 * k) / (2 * k + 1)
            total += term
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta)
                                * total)
    else:  # Even: A = sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...).
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= cos2 * (2 * k - 1) / (2 * k)
            total += term
        inside = math.sin(theta) * total
    return min(1.0, max(0.0, 1.0 - inside))


def t_quantile(q, df):
    """The `q` quantile of Student's t with `df` (an integer >= 1)
    degrees of freedom, for `0.5 <= q < 1`.

    Example:

    >>> round(t_quantile(0.975, 4), 4)
    2.7764
    """
    _check_df(df)
    if not 0.5 <= q < 1:
        raise ValueError(f"q must be in [0.5, 1). Received: q={q}")
    tail = 2 * (1 - q)  # The two-sided p-value of the quantile.
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        low, high = high, 2 * high
    for _ in range(200):  # Bisection: the p-value falls as t grows.
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
    return high


def _check_df(df):
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an integer >= 1. Received: df={df!r}")


@dataclasses.dataclass(frozen=True)
class PairedTest:
    """A paired t-test of `values - baseline` over shared seeds.

    Attributes:
        mean: Mean difference (None without shared seeds).
        sd: Standard deviation of the differences (None below two).
        n: Shared seeds.
        p: Two-sided p-value of "no difference" (None below two seeds).
    """

    mean: float = None
    sd: float = None
    n: int = 0
    p: float = None

    def interval(self, level):
        """The `level` confidence interval of the mean difference, or None
        below two seeds."""
        if self.p is None:
            return None
        half = (t_quantile(0.5 + level / 2, self.n - 1) * self.sd
                / math.sqrt(self.n))
        return (self.mean - half, self.mean + half)


def paired_test(values, baseline):
    """The paired t-test of `values[seed] - baseline[seed]` over the seeds
    both have (None values skipped).

    Args:
        values: Dict seed -> value.
        baseline: Dict seed -> baseline value.

    Returns:
        A `PairedTest`. All differences equal: p is 0 (or 1 when they are
        all 0), as the t statistic is infinite (or undefined).

    Example:

    >>> test = paired_test({0: 0.8, 1: 0.9, 2: 0.85}, {0: 0.7, 1: 0.7, 2: 0.8})
    >>> round(test.mean, 4), test.n, round(test.p, 4)
    (0.1167, 3, 0.1181)
    """
    seeds = [s for s in values if s in baseline
             and values[s] is not None and baseline[s] is not None]
    deltas = [values[s] - baseline[s] for s in seeds]
    if not deltas:
        return PairedTest()
    mean = statistics.fmean(deltas)
    if len(deltas) < 2:
        return PairedTest(mean, None, 1, None)
    sd = statistics.stdev(deltas)
    if sd == 0:
        return PairedTest(mean, sd, len(deltas), 1.0 if mean == 0 else 0.0)
    t = mean / (sd / math.sqrt(len(deltas)))
    return PairedTest(mean, sd, len(deltas),
                      t_two_sided_p(t, len(deltas) - 1))


def holm(p_values):
    """Holm's step-down adjusted p-values, in the order given; None
    entries (comparisons without a test) are kept and not counted.

    A comparison is significant at level `alpha` over the family when its
    adjusted p-value is at most `alpha`.

    Example:

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted = list(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def verdict(mean, p_adjusted, alpha, labels=(BETTER, WORSE, NO_EVIDENCE)):
    """`labels[0]` when the difference is significant (`p_adjusted <=
    alpha`) and positive, `labels[1]` when significant and negative, else
    `labels[2]`; `TOO_FEW` without a test.

    Example:

    >>> verdict(0.02, 0.01, 0.05), verdict(0.02, 0.2, 0.05)
    ('better', 'no evidence')
    >>> verdict(-0.01, 0.001, 0.05, labels=("more", "fewer", "no evidence"))
    'fewer'
    """
    if p_adjusted is None:
        return TOO_FEW
    if p_adjusted > alpha:
        return labels[2]
    return labels[0] if mean > 0 else labels[1]
