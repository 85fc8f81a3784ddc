"""One finished training run of a comparison: what the table, the files and
the progress lines read, in one record with its key and its JSON form (a
line of `runs.jsonl`, an entry of `results.json`'s `runs`). Standard
library only: the results folder reads it without Keras.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One activation trained from one seed, read at its chosen epoch.

    Attributes:
        activation: The activation spec's text, e.g. `"sugar:bsilu"`.
        seed: The seed of the initial weights and the batches.
        test_accuracy: Test accuracy at the chosen epoch (that of best
            validation accuracy, or the last without a validation split).
        test_loss: Test loss at the chosen epoch.
        dead_units: Fraction of dead rectified units at the chosen epoch;
            None for a model without rectified units (GELU).
        sparsity: Fraction of zero rectified outputs; None as above.
        epoch: The chosen epoch, from 1.
        last_test_accuracy: Test accuracy after the last epoch.
        seconds_per_epoch: Median time of an epoch after the first.
        seconds: Time of the whole run.
        curves: Per-epoch values (`loss`, `val_accuracy`, `test_accuracy`,
            `dead_units` where measured).

    Example:

    >>> run = RunResult("relu", 0, 0.9, 0.3, 0.02, 0.5, 3, 0.89, 1.5, 6.0,
    ...                 {"loss": [1.0, 0.5, 0.3]})
    >>> run.key
    ('relu', 0)
    >>> RunResult.from_json(run.to_json()) == run
    True
    """

    activation: str
    seed: int
    test_accuracy: float
    test_loss: float
    dead_units: float
    sparsity: float
    epoch: int
    last_test_accuracy: float
    seconds_per_epoch: float
    seconds: float
    curves: dict

    @property
    def key(self):
        """`(activation, seed)`: what identifies a run in a comparison."""
        return (self.activation, self.seed)

    def to_json(self):
        """The record as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record):
        """The run a `to_json` dict describes (keys it does not know, from a
        later version, are left out).

        Raises:
            ValueError: naming the missing fields.
        """
        if not isinstance(record, dict):
            raise ValueError(f"a run record is a JSON object, not "
                             f"{type(record).__name__}")
        missing = [name for name in FIELDS if name not in record]
        if missing:
            raise ValueError(f"the run record has no {missing}")
        return cls(**{name: record[name] for name in FIELDS})


FIELDS = tuple(field.name for field in dataclasses.fields(RunResult))
# The columns of `results.csv`: every field but the curves.
CSV_FIELDS = tuple(name for name in FIELDS if name != "curves")
