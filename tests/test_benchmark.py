"""The benchmark's quick mode runs, so the script cannot rot. No timing is
asserted: speed is measured by `keras-sugar bench`, not by tests."""

from keras_sugar.experiments import benchmark
from keras_sugar import implementations
from tests.testing import BACKEND


def test_quick_benchmark_measures_every_variant():
    results = benchmark.run(quick=True, repeats=2)
    assert results["backend"] == BACKEND
    assert set(results["rows"]) == {
        "relu", "gelu", "sugar/straight_through", "sugar/multiplicative",
        "sugar/custom_gradient"}
    assert results["auto"] in implementations.FUNCTIONS
    for row in results["rows"].values():
        for measure in ("activation", "vgg_step", "mlp_step"):
            timing = row[measure]
            assert 0 < timing["min_ms"] <= timing["median_ms"] <= (
                timing["max_ms"])
        memory = row["vgg_memory_bytes"]
        assert (memory is None) == (BACKEND == "tensorflow")
    table = benchmark.format_table(results)
    assert "1.00x" in table and "sugar/custom_gradient" in table
