"""A comparison's summary: per activation, means and spreads over seeds,
and paired differences from the baseline with 95% confidence intervals;
and the printed table."""

import statistics

from keras_sugar.experiments import paired_stats

MEASURES = ("test_accuracy", "dead_units", "sparsity", "seconds_per_epoch")
# Summary key prefix of each paired measure, and whether more is better.
PAIRED = {"test_accuracy": ("accuracy", True),
          "dead_units": ("dead_units", False)}


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.pstdev(values)


def summarize(runs, baseline=None):
    """Aggregates runs per activation, in the order they first appear.

    Args:
        runs: Run dicts (`activation`, `seed` and the `MEASURES`).
        baseline: The activation the others are compared with, seed by
            seed. Defaults to the first one.

    Returns:
        One dict per activation: `seeds`, each measure's mean and `_std`,
        and for accuracy and dead units `<prefix>_delta` (mean paired
        difference from the baseline), `<prefix>_delta_ci95` (`[low,
        high]`, or None below two shared seeds) and `<prefix>_verdict`.
        The baseline's own row has `0.0` and `[0.0, 0.0]`.
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
        for key, (prefix, higher_is_better) in PAIRED.items():
            row.update(_paired(by_seed, spec, baseline, key, prefix,
                               higher_is_better))
        summary.append(row)
    return summary


def _paired(by_seed, spec, baseline, key, prefix, higher_is_better):
    if spec == baseline:
        return {f"{prefix}_delta": 0.0, f"{prefix}_delta_ci95": [0.0, 0.0],
                f"{prefix}_verdict": "baseline"}
    values = {seed: run[key] for seed, run in by_seed[spec].items()}
    base = {seed: run[key] for seed, run in by_seed.get(baseline, {}).items()}
    mean, ci, _ = paired_stats.paired_difference(values, base)
    return {f"{prefix}_delta": mean,
            f"{prefix}_delta_ci95": list(ci) if ci else None,
            f"{prefix}_verdict": (paired_stats.verdict(ci, higher_is_better)
                                  if mean is not None else "n/a")}


def _pct(mean, std=None):
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + (f" +- {100 * std:.2f}" if std is not None
                                  else "")


def _delta(row, prefix):
    if row[f"{prefix}_verdict"] == "baseline":
        return "baseline"
    mean, ci = row[f"{prefix}_delta"], row[f"{prefix}_delta_ci95"]
    if mean is None:
        return "n/a"
    text = f"{100 * mean:+.2f}"
    if ci is not None:
        text += f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"
    return text


def _verdict(row):
    verdict = row["accuracy_verdict"]
    return "" if verdict == "baseline" else verdict


def format_table(summary):
    """Renders the summary as a text table: accuracy and dead units with
    their paired difference from the baseline (95% CI) and the verdict."""
    header = (f"{'activation':<22}{'test acc %':>16}"
              f"{'vs baseline [95% CI]':>28}  {'verdict':<24}{'dead %':>7}"
              f"{'vs baseline [95% CI]':>26}{'sparsity %':>12}{'s/epoch':>9}")
    lines = [header]
    for row in summary:
        lines.append(
            f"{row['activation']:<22}"
            f"{_pct(row['test_accuracy'], row['test_accuracy_std']):>16}"
            f"{_delta(row, 'accuracy'):>28}"
            f"  {_verdict(row):<24}"
            f"{_pct(row['dead_units']):>7}"
            f"{_delta(row, 'dead_units'):>26}"
            f"{_pct(row['sparsity']):>12}{row['seconds_per_epoch']:>9.2f}")
    return "\n".join(lines)
