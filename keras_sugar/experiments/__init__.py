"""The experiment harness: the `keras-sugar` command and what it runs.

Kept apart from the library (`keras_sugar`), which is what models are built
with: `compare` (train one architecture with several activations and
seeds), `benchmark` (speed and memory against ReLU and GELU), the reference
`architectures`, the `datasets` they train on, and `cli`, whose
subcommands each own their arguments (`*_command.py`).
"""
