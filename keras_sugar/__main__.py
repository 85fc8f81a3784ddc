"""`python -m keras_sugar ...` is the `keras-sugar` command."""

import sys

from keras_sugar.experiments.cli import main

sys.exit(main())
