"""A comparison's summary: per activation, means and spreads over seeds,
and paired differences from the baseline with family-wise verdicts (see
`paired_stats`); and the printed table with the note that says how to read
it."""

import statistics
import textwrap

from keras_sugar.experiments import paired_stats

MEASURES = ("test_accuracy", "dead_units", "sparsity", "seconds_per_epoch")
# Summary key prefix of each paired measure (each a family of its own),
# and its verdicts for a significant rise, a significant fall, neither.
PAIRED = {
    "test_accuracy": ("accuracy", (paired_stats.BETTER, paired_stats.WORSE,
                                   paired_stats.NO_EVIDENCE)),
    "dead_units": ("dead_units", ("more", "fewer", paired_stats.NO_EVIDENCE)),
}
ALPHA = 0.05


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.pstdev(values)


def summarize(runs, baseline=None, alpha=ALPHA):
    """Aggregates runs per activation, in the order they first appear.

    Args:
        runs: Run dicts (`activation`, `seed` and the `MEASURES`).
        baseline: The activation the others are compared with, seed by
            seed. Defaults to the first one.
        alpha: The family-wise error level of the verdicts and intervals
            (see `paired_stats`). Defaults to `0.05`.

    Returns:
        One dict per activation: `seeds`, each measure's mean and `_std`,
        and for accuracy and dead units (each a family of comparisons with
        the baseline) `<prefix>_delta` (mean paired difference from the
        baseline), `<prefix>_delta_ci` (`[low, high]`, the Bonferroni
        simultaneous interval at level `1 - alpha`, or None below two
        shared seeds), `<prefix>_p` (the paired t-test's p-value),
        `<prefix>_p_holm` (Holm-adjusted over the family) and
        `<prefix>_verdict`. The baseline's row has `0.0`, `[0.0, 0.0]`
        and the verdict `"baseline"`.
    """
    specs = list(dict.fromkeys(run["activation"] for run in runs))
    baseline = baseline or (specs[0] if specs else None)
    by_seed = {spec: {run["seed"]: run for run in runs
                      if run["activation"] == spec} for spec in specs}
    summary = []
    for spec in specs:
        mine = list(by_seed[spec].values())
        row = {"activation": spec, "seeds": len(mine)}
        for key in MEASURES:
            row[key], row[f"{key}_std"] = _mean_std([r[key] for r in mine])
        summary.append(row)
    for key, (prefix, labels) in PAIRED.items():
        _compare_family(summary, by_seed, baseline, key, prefix, labels,
                        alpha)
    return summary


def _compare_family(summary, by_seed, baseline, key, prefix, labels, alpha):
    """Adds one measure's paired comparisons with the baseline to each
    row: Holm's verdicts over the family, Bonferroni's intervals."""
    base = {seed: run[key] for seed, run in by_seed.get(baseline, {}).items()}
    tests = {}
    for row in summary:
        if row["activation"] != baseline:
            values = {seed: run[key]
                      for seed, run in by_seed[row["activation"]].items()}
            tests[row["activation"]] = paired_stats.paired_test(values, base)
    names = list(tests)
    adjusted = dict(zip(names, paired_stats.holm([tests[n].p
                                                  for n in names])))
    family = sum(test.p is not None for test in tests.values())
    level = 1 - alpha / max(family, 1)
    for row in summary:
        spec = row["activation"]
        if spec == baseline:
            row.update({f"{prefix}_delta": 0.0,
                        f"{prefix}_delta_ci": [0.0, 0.0],
                        f"{prefix}_p": None, f"{prefix}_p_holm": None,
                        f"{prefix}_verdict": "baseline"})
            continue
        test = tests[spec]
        interval = test.interval(level)
        row.update({
            f"{prefix}_delta": test.mean,
            f"{prefix}_delta_ci": list(interval) if interval else None,
            f"{prefix}_p": test.p,
            f"{prefix}_p_holm": adjusted[spec],
            f"{prefix}_verdict": (
                "n/a" if test.mean is None else paired_stats.verdict(
                    test.mean, adjusted[spec], alpha, labels))})


def family_sizes(summary):
    """Per paired measure, how many comparisons its family holds."""
    return {prefix: sum(row.get(f"{prefix}_p") is not None
                        for row in summary)
            for prefix, _ in PAIRED.values()}


def statistics_record(summary, alpha=ALPHA):
    """How the verdicts and intervals were made, for `results.json`.

    Example:

    >>> statistics_record([], 0.05)["method"]
    'holm'
    """
    return {
        "method": paired_stats.METHOD,
        "alpha": alpha,
        "test": "two-sided paired t-test of each activation against the "
                "baseline over their shared seeds",
        "adjustment": "Holm step-down over each measure's comparisons with "
                      "the baseline (accuracy and dead units are separate "
                      "families): the chance that any finding of a family "
                      "(better, worse, fewer, more) is false is at most "
                      "alpha",
        "intervals": "Bonferroni simultaneous: each at level 1 - alpha/m, "
                     "m the comparisons of its family",
        "comparisons": family_sizes(summary),
    }


def _pct(mean, std=None):
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + (f" +- {100 * std:.2f}" if std is not None
                                  else "")


def _delta(row, prefix):
    if row[f"{prefix}_verdict"] == "baseline":
        return "baseline"
    mean, ci = row[f"{prefix}_delta"], row[f"{prefix}_delta_ci"]
    if mean is None:
        return "n/a"
    text = f"{100 * mean:+.2f}"
    if ci is not None:
        text += f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
    return text


def _p(row, prefix):
    p = row[f"{prefix}_p_holm"]
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _verdict(row, prefix):
    verdict = row[f"{prefix}_verdict"]
    return "" if verdict in ("baseline", "n/a") else verdict


def format_table(summary, alpha=ALPHA):
    """Renders the summary as a text table: accuracy and dead units, each
    with its paired difference from the baseline, simultaneous interval,
    Holm-adjusted p-value and verdict.

    Example:

    >>> runs = [{"activation": a, "seed": s, "test_accuracy": acc,
    ...          "dead_units": None, "sparsity": None,
    ...          "seconds_per_epoch": 1.0}
    ...         for a, accs in (("relu", (0.5, 0.6)), ("gelu", (0.7, 0.7)))
    ...         for s, acc in enumerate(accs)]
    >>> print(format_table(summarize(runs)))  # doctest: +NORMALIZE_WHITESPACE
    activation test acc % vs relu [95% CI] p (Holm) verdict dead % vs relu [95% CI] p (Holm) verdict sparsity % s/epoch
    relu 55.00 +- 5.00 baseline n/a baseline n/a 1.00
    gelu 70.00 +- 0.00 +15.00 [-48.53, +78.53] 0.205 no evidence n/a n/a n/a 1.00
    """
    baseline = next((row["activation"] for row in summary
                     if row["accuracy_verdict"] == "baseline"), "baseline")
    versus = f"vs {baseline} [{100 * (1 - alpha):g}% CI]"
    columns = [
        ("activation", "<", lambda r: r["activation"]),
        ("test acc %", ">",
         lambda r: _pct(r["test_accuracy"], r["test_accuracy_std"])),
        (versus, ">", lambda r: _delta(r, "accuracy")),
        ("p (Holm)", ">", lambda r: _p(r, "accuracy")),
        ("verdict", "<", lambda r: _verdict(r, "accuracy")),
        ("dead %", ">", lambda r: _pct(r["dead_units"])),
        (versus, ">", lambda r: _delta(r, "dead_units")),
        ("p (Holm)", ">", lambda r: _p(r, "dead_units")),
        ("verdict", "<", lambda r: _verdict(r, "dead_units")),
        ("sparsity %", ">", lambda r: _pct(r["sparsity"])),
        ("s/epoch", ">", lambda r: f"{r['seconds_per_epoch']:.2f}"),
    ]
    cells = [[header for header, _, _ in columns]] + [
        [cell(row) for _, _, cell in columns] for row in summary]
    widths = [max(len(line[i]) for line in cells)
              for i in range(len(columns))]
    return "\n".join(
        "  ".join(f"{text:{align}{width}}" for text, (_, align, _), width
                  in zip(line, columns, widths)).rstrip()
        for line in cells)


def note(summary, alpha=ALPHA):
    """The lines printed under the table: how its intervals and verdicts
    were made (see `statistics_record`)."""
    baseline = next((row["activation"] for row in summary
                     if row["accuracy_verdict"] == "baseline"), "baseline")
    sizes = family_sizes(summary)
    families = " and ".join(
        f"{m} for {'accuracy' if prefix == 'accuracy' else 'dead units'}"
        for prefix, m in sizes.items() if m)
    return textwrap.fill(
        f"vs {baseline}: the mean of each seed's difference from "
        f"{baseline} (same seed, same initial weights), in points. Verdicts: "
        f"paired t-tests over seeds, Holm-adjusted over each column's "
        f"comparisons with {baseline} ({families or 'none'}): the chance "
        f"that any finding of a column (better, worse, fewer, more) is "
        f"false is at most {100 * alpha:g}% (--alpha {alpha:g}); p (Holm) "
        f"is the adjusted p-value. "
        f"Intervals: simultaneous over each column (Bonferroni), so a "
        f"verdict Holm finds in a later step may show one that touches 0.",
        width=100)
