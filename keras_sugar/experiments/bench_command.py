"""`keras-sugar bench`: its arguments and their defaults."""

HELP = "Speed and memory of SugarReLU against ReLU and GELU."


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="Tiny sizes and few repeats (a smoke run).")
    parser.add_argument("--surrogate", default="bsilu",
                        help="Surrogate of the SUGAR variants.")
    parser.add_argument("--repeats", type=int, default=None,
                        help="Timed steps per variant; unset means 30, or 3 "
                        "with --quick.")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="Batch of the train-step measurements.")
    parser.add_argument("--json", default=None,
                        help="Also write the results here.")


def main(args):
    from keras_sugar.experiments import benchmark

    benchmark.main(args)
