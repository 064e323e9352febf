"""`benchmarks/kernel_profile.py`: it attributes traced time to the compiled program's kernels,
and runs end to end. Never a timing: speed depends on the machine."""

import pytest
from _benchmark_scripts import benchmark_scripts, printed_report

HLO = """\
HloModule jit_run, entry_computation_layout={(f32[64,32]{1,0})->f32[]}

%fused_computation.66 (param_0.159: f32[64,32,32]) -> f32[64,32,32] {
  %param_0.159 = f32[64,32,32]{2,1,0} parameter(0)
  ROOT %add.5008 = f32[64,32,32]{2,1,0} add(%param_0.159, %param_0.159), metadata={op_name="jit(run)/while/body/closed_call/vmap()/add" stack_frame_id=824}
}

ENTRY %main {
  %multiply_add_fusion.7 = f32[64,32,32]{2,1,0} fusion(%a, %b), kind=kLoop, calls=%fused_computation.66, metadata={op_name="jit(run)/while/body/closed_call/vmap()/add" stack_frame_id=824}
  %dot.34 = f32[64,2]{1,0} dot(%c, %d), lhs_contracting_dims={0}, rhs_contracting_dims={1}, metadata={op_name="jit(run)/while/body/closed_call/vmap()/transpose"}
  %tuple_fusion = (f32[64]{0}, f32[2]{0}) fusion(%e), kind=kLoop, calls=%f
  ROOT %while.7 = (s32[], f32[64,32]{1,0}) while(%t), condition=%cond, body=%body
}
"""


@pytest.fixture(scope="module")
def bench():
    # The script imports its siblings (`throughput`, `_experiments`) as top-level modules.
    with benchmark_scripts(("kernel_profile",)) as modules:
        yield modules["kernel_profile"]


def test_instructions_read_name_shape_and_jax_operation(bench):
    known = bench.instructions(HLO)
    assert known["multiply_add_fusion.7"] == {
        "shape": "f32[64,32,32]",
        "opcode": "fusion",
        "op": "vmap()/add",
    }
    assert known["dot.34"] == {"shape": "f32[64,2]", "opcode": "dot", "op": "vmap()/transpose"}
    assert known["tuple_fusion"] == {"shape": "(f32[64], f32[2])", "opcode": "fusion", "op": ""}
    assert known["while.7"]["opcode"] == "while"
    assert known["add.5008"]["opcode"] == "add"


def test_kernel_times_sum_per_kernel_and_step_and_skip_the_loop(bench):
    known = bench.instructions(HLO)
    events = [
        {"ph": "X", "name": "multiply_add_fusion.7", "dur": 27.0},
        {"ph": "X", "name": "multiply_add_fusion.7", "dur": 29.0},
        {"ph": "X", "name": "dot.34", "dur": 10.0},
        {"ph": "X", "name": "dot.34", "dur": 12.0},
        {"ph": "X", "name": "while.7", "dur": 500.0},  # spans the others
        {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 400.0},  # not an instruction
        {"ph": "i", "name": "dot.34"},  # an instant, not a span
    ]
    kernels = bench.kernel_times(events, known, steps=2)
    assert [k["kernel"] for k in kernels] == ["multiply_add_fusion.7", "dot.34"]
    assert kernels[0]["us_per_step"] == pytest.approx(28.0)
    assert kernels[1]["us_per_step"] == pytest.approx(11.0)
    assert kernels[0]["launches_per_step"] == 1.0
    assert kernels[1]["shape"] == "f32[64,2]"


def test_an_incomplete_trace_is_refused_with_an_error_line(bench):
    def kernels(*launches_per_step):
        return [{"launches_per_step": n} for n in launches_per_step]

    bench.check_complete(kernels(1, 1, 2, 0.25), steps=4)  # one setup kernel, run once
    with pytest.raises(SystemExit, match=r"^error: the trace of 20000 steps is incomplete"):
        bench.check_complete(kernels(0.23, 0.23, 0.23, 0.00005), steps=20_000)
    with pytest.raises(SystemExit, match=r"^error: .*names none"):
        bench.check_complete([], steps=4)


def test_quick_run_writes_table_and_json(bench, tmp_path, capsys):
    argv = [
        "--methods", "RFLO",
        "--batches", "2",
        "--hidden-size", "4",
        "--env-steps", "16",
        "--repeats", "1",
        "--top", "5",
        "--out", str(tmp_path),
    ]  # fmt: skip
    record = bench.main(argv)

    printed = printed_report(capsys.readouterr().out, record, tmp_path / "kernel_profile.json")
    (result,) = printed["results"]
    assert (result["method"], result["batch"], result["steps"]) == ("RFLO", 2, 8)
    assert result["traced_steps"] == 8  # the shorter of the two scans
    kernels = result["kernels"]
    assert len(kernels) == 5 and all(k["opcode"] not in ("while", "call") for k in kernels)
    listed_us = sum(k["us_per_step"] for k in kernels)
    assert listed_us + result["other_kernels_us"] == pytest.approx(result["traced_kernels_us"])
    assert sum(k["share"] for k in kernels) == pytest.approx(
        listed_us / result["traced_kernels_us"]
    )
    assert [k["us_per_step"] for k in kernels] == sorted(
        (k["us_per_step"] for k in kernels), reverse=True
    )
    # The learner's step launches kernels every step: at least one per step on average.
    assert result["kernels_per_step"] >= 1 and result["step_us"] > 0
    table = (tmp_path / "kernel_profile.md").read_text()
    assert "Command:" in table and "**RFLO, batch 2**" in table
    assert table.count("\n| ") == 1 + 5  # the header, then one row per listed kernel
