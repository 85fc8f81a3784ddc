"""`python -m keras_sugar ...` is the `keras-sugar` command."""

import sys

from keras_sugar.cli import main

sys.exit(main())
