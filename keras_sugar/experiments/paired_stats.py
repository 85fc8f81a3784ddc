"""Paired comparison against a baseline over the same seeds: the mean
difference, its 95% confidence interval (Student's t) and a plain verdict.

Runs with the same seed start from the same initial weights and see the
same batches, so the per-seed difference removes what the seed does to
both; its spread over seeds is what decides whether a gap is real.
Stdlib only (no SciPy).
"""

import math
import statistics

# Two-sided 95% quantiles of Student's t (0.975 one-sided), df = 1..30.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060,
         2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199,
         2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
         2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959964

BETTER = "better"
WORSE = "worse"
NO_EVIDENCE = "no evidence either way"
TOO_FEW = "needs 2+ shared seeds"


def t_quantile_975(df):
    """The 0.975 quantile of Student's t with `df` degrees of freedom.

    Tabulated up to 30; beyond, the Cornish-Fisher expansion (error below
    1e-4).

    Example:

    >>> t_quantile_975(4)
    2.7764
    """
    if df < 1:
        raise ValueError(f"df must be >= 1. Received: df={df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z ** 3 + z) / (4 * df)
            + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2))


def paired_difference(values, baseline):
    """Mean of `values[seed] - baseline[seed]` over the seeds both have,
    and its 95% confidence interval.

    Args:
        values: Dict seed -> value (None values are skipped).
        baseline: Dict seed -> baseline value.

    Returns:
        `(mean, (low, high), n)`; the interval is None below two shared
        seeds, the mean None with none.

    Example:

    >>> mean, ci, n = paired_difference({0: 0.8, 1: 0.9}, {0: 0.7, 1: 0.7})
    >>> round(mean, 3), [round(v, 3) for v in ci], n
    (0.15, [-0.485, 0.785], 2)
    """
    seeds = [s for s in values if s in baseline
             and values[s] is not None and baseline[s] is not None]
    deltas = [values[s] - baseline[s] for s in seeds]
    if not deltas:
        return None, None, 0
    mean = statistics.fmean(deltas)
    if len(deltas) < 2:
        return mean, None, 1
    half = (t_quantile_975(len(deltas) - 1) * statistics.stdev(deltas)
            / math.sqrt(len(deltas)))
    return mean, (mean - half, mean + half), len(deltas)


def verdict(ci, higher_is_better=True):
    """`"better"` / `"worse"` when the interval excludes 0, otherwise
    `"no evidence either way"`.

    Example:

    >>> verdict((0.01, 0.05)), verdict((-0.02, 0.05))
    ('better', 'no evidence either way')
    """
    if ci is None:
        return TOO_FEW
    low, high = ci
    if low > 0:
        return BETTER if higher_is_better else WORSE
    if high < 0:
        return WORSE if higher_is_better else BETTER
    return NO_EVIDENCE
