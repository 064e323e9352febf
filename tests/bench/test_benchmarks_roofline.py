"""`benchmarks/roofline.py` charges a kernel its marginal time per iteration."""

from _benchmark_scripts import benchmark_scripts


def test_marginal_seconds_cancels_the_fixed_cost_of_a_call():
    # The script imports its sibling `_experiments` as a top-level module.
    with benchmark_scripts(("roofline",)) as modules:
        roofline = modules["roofline"]
    calls = []

    def seconds_of(iterations: int) -> float:
        calls.append(iterations)
        return 4e-4 + 4e-5 * iterations  # a call's copies, then 40 µs per step

    assert abs(roofline.marginal_seconds(seconds_of, 70) - 4e-5) < 1e-15
    assert sorted(calls) == [70, 140]
    # What dividing one call by its iterations charged instead: ~6 µs too much per step.
    assert seconds_of(70) / 70 > 4.5e-5
