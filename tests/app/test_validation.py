"""Up-front validation: every bad value fails before anything is compiled or written, with a
message naming the value and what is allowed. Through the CLI the process prints
``error: ...`` (no traceback) and returns a non-zero code (2 for bad values)."""

import json
import os

import jax
import pytest
import tyro
from _training_helpers import TINY_FLAGS, persistent_compilation_cache

from rtrrl import envs
from rtrrl.algorithms import RTRRL
from rtrrl.app import memory
from rtrrl.app.checkpoint import CheckpointError, read_checkpoint_header
from rtrrl.app.cli import main
from rtrrl.app.config import (
    TrainConfig,
    build_algorithm,
    build_env,
    load_config_file,
    parse_env_options,
    yaml_value,
)
from rtrrl.app.plotting import plot_runs
from rtrrl.app.runs import run_training
from rtrrl.cells import CTRNN
from rtrrl.estimators import RFLO
from rtrrl.heads import CategoricalActor
from rtrrl.training import METRIC_COLUMNS, LoopConfig


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        yield


def _cli_error(argv, capsys, *, code=2):
    """Run ``rtrrl`` with `argv`; check the exit code and the one-line error; return stderr."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "error: " in err
    assert "Traceback" not in err
    return err


# ----------------------------------------------------------------- ranges of TrainConfig values

UNIT_INTERVAL = ["gamma", "lambda_actor", "lambda_critic", "lambda_cell"]


@pytest.mark.parametrize("value", [1.5, -0.1])
@pytest.mark.parametrize("name", UNIT_INTERVAL)
def test_train_config_refuses_discount_and_lambda_outside_unit_interval(name, value):
    with pytest.raises(ValueError) as error:
        TrainConfig(**{name: value})
    message = str(error.value)
    assert f"`{name}`" in message and "in [0, 1]" in message and f"got {value}" in message


NON_POSITIVE = [
    ("hidden_size", 0, "an integer >= 1"),
    ("hidden_size", -4, "an integer >= 1"),
    ("steps", 0, "an integer >= 1"),
    ("num_envs", 0, "an integer >= 1"),
    ("seeds", 0, "an integer >= 1"),
    ("window", 0, "an integer >= 1"),
    ("eval_every", 0, "an integer >= 1"),
    ("lr_actor", 0.0, "> 0"),
    ("lr_critic", -1e-3, "> 0"),
    ("lr_cell", 0.0, "> 0"),
    ("max_grad_norm", -1.0, ">= 0 (0: off)"),
    ("cpu_threads", 0, "an integer >= 1 (or unset: automatic)"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), NON_POSITIVE)
def test_train_config_refuses_non_positive_sizes_and_learning_rates(name, value, allowed):
    with pytest.raises(ValueError) as error:
        TrainConfig(**{name: value})
    flag = "--" + name.replace("_", "-")
    assert str(error.value) == f"`{name}` ({flag}) must be {allowed}, got {value!r}."


@pytest.mark.parametrize(
    ("flag", "value", "name", "allowed"),
    [
        ("--gamma", "1.5", "gamma", "in [0, 1]"),
        ("--lambda-cell", "1.01", "lambda_cell", "in [0, 1]"),
        ("--hidden-size", "0", "hidden_size", "an integer >= 1"),
        ("--steps", "0", "steps", "an integer >= 1"),
        ("--num-envs", "0", "num_envs", "an integer >= 1"),
        ("--lr-actor", "-0.001", "lr_actor", "> 0"),
        ("--window", "0", "window", "an integer >= 1"),
    ],
)
def test_cli_prints_the_range_error_and_returns_2(tmp_path, capsys, flag, value, name, allowed):
    out = tmp_path / "run"
    err = _cli_error(["train", flag, value, "--out", str(out)], capsys)
    assert f"`{name}` ({flag}) must be {allowed}, got {value}" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("total_steps", 0, "an integer >= 1"),
        ("num_envs", -1, "an integer >= 1"),
        ("eval_every", 0, "an integer >= 1"),
        ("patience", 0, ">= 1 (or None)"),
    ],
)
def test_loop_config_refuses_non_positive_sizes(field, value, allowed):
    kwargs = {"total_steps": 10, field: value}
    with pytest.raises(ValueError, match=rf"`{field}` must be (an integer )?>= 1.*got {value}"):
        LoopConfig(**kwargs)


@pytest.mark.parametrize("field", ["total_steps", "eval_every", "patience", "eval_steps", "seed"])
def test_loop_config_refuses_a_bool_for_a_count(field, without_runtime_type_checks):
    """``True`` is an ``int`` to Python (and to beartype): ``total_steps=True`` ran one step."""
    with pytest.raises(ValueError, match=rf"`{field}` must be .*got True"):
        LoopConfig(**{"total_steps": 10, field: True})


# ------------------------------------------------------------------------- RTRRL itself


def _cell(input_size=7):
    return CTRNN(input_size, 4, key=jax.random.key(0))


@pytest.mark.parametrize("value", [1.5, -0.5])
@pytest.mark.parametrize("name", UNIT_INTERVAL)
def test_rtrrl_refuses_discount_and_lambda_outside_unit_interval(name, value):
    with pytest.raises(ValueError) as error:
        RTRRL(cell=_cell(), estimator=RFLO(), **{name: value})
    assert str(error.value) == f"RTRRL: `{name}` must lie in [0, 1], got {value}."


@pytest.mark.parametrize("name", ["lr_actor", "lr_critic", "lr_cell"])
def test_rtrrl_refuses_non_positive_learning_rates(name):
    with pytest.raises(ValueError, match=rf"RTRRL: `{name}` must be > 0, got 0.0"):
        RTRRL(cell=_cell(), estimator=RFLO(), **{name: 0.0})


def test_rtrrl_refuses_non_positive_max_grad_norm():
    with pytest.raises(ValueError, match=r"RTRRL: `max_grad_norm` must be > 0 \(or None"):
        RTRRL(cell=_cell(), estimator=RFLO(), max_grad_norm=0.0)


@pytest.mark.parametrize(
    ("algo", "value", "expected"),
    [("rtrrl", None, 1.0), ("rtrrl", 3.0, 3.0), ("rtrrl", 0.0, None)]
    + [("ppo", None, 0.5), ("ppo", 3.0, 3.0), ("ppo", 0.0, None)],
)
def test_max_grad_norm_unset_is_the_learners_default_and_zero_is_off(algo, value, expected):
    """``--max-grad-norm``: unset gives RTRRL's 1.0 (the paper) or PPO's 0.5; 0 gives no
    clipping (``None`` in the learner)."""
    config = TrainConfig(env="CartPole-v1", algo=algo, max_grad_norm=value, hidden_size=4)
    learner = build_algorithm(config, build_env(config))(jax.random.key(0))
    assert learner.max_grad_norm == expected


def test_estimator_that_cannot_serve_the_cell_is_refused(tmp_path, capsys):
    """``--cell lru --estimator rflo``: RFLO is defined for CTRNNs only; the message names
    both and the alternatives."""
    out = tmp_path / "run"
    err = _cli_error(["train", "--cell", "lru", "--estimator", "rflo", "--out", str(out)], capsys)
    assert "RFLO" in err and "LRU" in err and "RTRL()" in err
    assert "--estimator rtrl" in err  # the flag that fixes it
    assert not out.exists()


def test_categorical_actor_on_continuous_actions_is_refused():
    env = envs.make("MountainCarContinuous-v0")
    cell = _cell(envs.meta_rl_input_size(env))
    actor = CategoricalActor(cell.feature_size, 2, key=jax.random.key(1))
    algorithm = RTRRL(cell=cell, estimator=RFLO(), actor=actor)
    with pytest.raises(ValueError) as error:
        algorithm.init(jax.random.key(2), env)
    message = str(error.value)
    assert "CategoricalActor" in message and "MountainCarContinuous-v0" in message
    assert "continuous" in message and "GaussianActor" in message


# ------------------------------------------------------------------ types of TrainConfig values


def test_train_config_refuses_an_unknown_cell_name_with_the_choices(without_runtime_type_checks):
    with pytest.raises(ValueError) as error:
        TrainConfig(cell="rnn")
    assert str(error.value) == (
        "Unknown cell 'rnn' (--cell): use one of ctrnn, lru, lstm, gru, linear, or an import "
        "path module:Name. Did you mean ctrnn?"
    )


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("hidden_size", True, "an integer"),
        ("steps", 2000.0, "an integer"),
        ("gamma", "0.9", "a number"),
        ("greedy_eval", "false", "true or false"),
        ("cell", 3, "a string"),
        ("patience", "5", "an integer (or unset)"),
    ],
)
def test_train_config_refuses_values_of_the_wrong_type(
    name, value, allowed, without_runtime_type_checks
):
    with pytest.raises(ValueError) as error:
        TrainConfig(**{name: value})
    flag = "--" + name.replace("_", "-")
    expected = f"`{name}` ({flag}) must be {allowed}, got {value!r} ({type(value).__name__})."
    assert str(error.value) == expected


# ------------------------------------------------------------------ environments and options


def test_unknown_env_id_suggests_close_ids(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"Unknown environment id 'CartPole-v2'.*CartPole-v1"):
        build_env(TrainConfig(env="CartPole-v2"))
    err = _cli_error(["train", "--env", "CartPole-v2", "--out", str(tmp_path / "r")], capsys)
    assert "'CartPole-v2'" in err and "Did you mean: CartPole-v1" in err


def test_env_option_the_env_does_not_take_is_refused(tmp_path, capsys):
    argv = ["train", "--env-option", "memory_length=8", "--out", str(tmp_path / "r")]
    err = _cli_error(argv, capsys)
    assert "'CartPole-v1' does not take the option(s) ['memory_length']" in err
    assert "max_steps_in_episode" in err  # what it does accept


@pytest.mark.parametrize(
    ("value", "shown"), [("-3", "-3"), ("0", "0"), ("2.5", "2.5"), ("abc", "'abc'")]
)
def test_gymnax_option_of_the_wrong_type_or_range_is_refused(tmp_path, capsys, value, shown):
    """gymnax checks nothing (``memory_length=-3`` trained with returns of 750): the option
    must be an integer >= 1 like gymnax's default."""
    with pytest.raises(ValueError, match="memory_length must be an integer >= 1"):
        envs.make("MemoryChain-bsuite", memory_length=yaml_value(value))
    argv = ["train", "--env", "MemoryChain-bsuite", "--env-option", f"memory_length={value}"]
    err = _cli_error([*argv, "--out", str(tmp_path / "r")], capsys)
    assert "MemoryChain-bsuite: option memory_length must be an integer >= 1" in err
    assert f"gymnax's default is 5), got {shown}." in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--env", "MemoryChain-bsuite", "--env-option", "memory_length=1000000000"],
            "option memory_length=1000000000 puts the episode's reward at step 1000000001, "
            "after the episode ends (max_steps_in_episode=1000)",
        ),
        (
            ["--env", "UmbrellaChain-bsuite", "--env-option", "chain_length=101"],
            "option chain_length=101 puts the episode's reward at step 101",
        ),
        (
            ["--env-option", "max_steps_in_episode=1000000000000"],
            "option max_steps_in_episode must be an integer >= 1 and <= 2147483647",
        ),
    ],
)
def test_absurd_gymnax_lengths_are_refused_naming_the_option(tmp_path, capsys, argv, expected):
    """``memory_length=10**9`` used to train on episodes that end (after 1000 steps) before
    their only reward; ``max_steps_in_episode=10**12`` was an OverflowError traceback."""
    err = _cli_error(["train", *argv, "--out", str(tmp_path / "r")], capsys)
    assert expected in err
    assert not (tmp_path / "r").exists()


def test_a_long_memory_chain_with_long_enough_episodes_is_accepted():
    env = envs.make("MemoryChain-bsuite", memory_length=5000, max_steps_in_episode=5001)
    assert env.observation_size == 3


def test_an_environment_too_large_for_memory_is_refused_naming_its_option(
    tmp_path, capsys, monkeypatch
):
    """``num_bits=10**9`` makes observations of a billion numbers: the memory estimate
    refuses it and names the option, not only the run's size flags."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)
    argv = ["--env", "MemoryChain-bsuite", "--env-option", "num_bits=1000000000"]
    err = _cli_error(["train", *argv, "--out", str(tmp_path / "r")], capsys)
    assert "or the environment's options (--env-option num_bits=1000000000)" in err


def test_gymnax_options_of_the_right_type_are_accepted():
    env = envs.make("MemoryChain-bsuite", memory_length=3, num_bits=2)
    assert env.observation_size == envs.make("MemoryChain-bsuite", num_bits=2).observation_size
    with pytest.raises(ValueError, match="option deterministic must be true or false"):
        envs.make("DeepSea-bsuite", deterministic=1)


def test_repeated_env_option_flags_are_all_kept(tmp_path):
    """``--env-option a=1 --env-option b=2`` keeps both (argparse would keep the last), and
    flags add to the options of a config file."""
    argv = ["--env-option", "memory_length=4", "--env-option", "num_bits=2"]
    config = tyro.cli(TrainConfig, args=argv)
    assert config.env_option == ("memory_length=4", "num_bits=2")
    assert parse_env_options(config) == {"memory_length": 4, "num_bits": 2}
    path = tmp_path / "run.yaml"
    path.write_text("env: MemoryChain-bsuite\nenv-option: [memory_length=4]\n")
    from_file = TrainConfig(**load_config_file(path))
    config = tyro.cli(TrainConfig, args=["--env-option", "num_bits=2"], default=from_file)
    assert config.env_option == ("memory_length=4", "num_bits=2")


def test_obs_mask_flag_and_env_option_together_are_refused(tmp_path, capsys):
    argv = ["train", "--obs-mask", "vel", "--env-option", "obs_mask=pos"]
    err = _cli_error([*argv, "--out", str(tmp_path / "r")], capsys)
    assert "--obs-mask and --env-option obs_mask=... both set" in err


def test_malformed_env_option_is_refused(tmp_path, capsys):
    err = _cli_error(["train", "--env-option", "memory_length", "--out", str(tmp_path)], capsys)
    assert "--env-option 'memory_length'" in err and "KEY=VALUE" in err


# ------------------------------------------------------------------------ config files


def test_unknown_config_file_key_suggests_the_close_name(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("hiden_size: 4\nsteps: 1000\n")
    with pytest.raises(ValueError, match=r"unknown option 'hiden_size'. Did you mean hidden_size"):
        load_config_file(path)
    err = _cli_error(["train", "--config", str(path), "--out", str(tmp_path / "r")], capsys)
    assert "hiden_size" in err and "hidden_size" in err


@pytest.mark.parametrize(
    ("name", "text"),
    [("bad.yaml", "hidden_size: [4\nsteps: 1000\n"), ("bad.toml", "hidden_size = \n")],
)
def test_config_file_with_bad_syntax_is_refused(tmp_path, capsys, name, text):
    path = tmp_path / name
    path.write_text(text)
    err = _cli_error(["train", "--config", str(path), "--out", str(tmp_path / "r")], capsys)
    assert f"Config file {path} could not be parsed" in err


def test_yaml_config_reads_exponent_notation_as_a_number(tmp_path):
    """PyYAML (YAML 1.1) would read ``1e-3`` as the string "1e-3"."""
    path = tmp_path / "run.yaml"
    path.write_text("lr-cell: 1e-3\neta-entropy: 5E-6\ngamma: .9\n")
    assert load_config_file(path) == {"lr_cell": 1e-3, "eta_entropy": 5e-6, "gamma": 0.9}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('gamma: "0.9"\n', "'gamma' must be a number, got '0.9' (str)"),
        ('meta-rl: "no"\n', "'meta-rl' must be true or false, got 'no' (str)"),
        ("steps: 2e3\n", "'steps' must be an integer, got 2000.0 (float)"),
        ("resume: runs/a\n", "'resume' cannot be set in a config file"),
    ],
)
def test_config_file_value_of_the_wrong_type_is_refused(tmp_path, capsys, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    err = _cli_error(["train", "--config", str(path), "--out", str(tmp_path / "r")], capsys)
    assert f"Config file {path}: {message}" in err
    assert "Warning" not in err


def test_config_file_value_out_of_range_is_refused(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text("gamma = 2.0\n")
    err = _cli_error(["train", "--config", str(path), "--out", str(tmp_path / "r")], capsys)
    assert "`gamma` (--gamma) must be in [0, 1], got 2.0" in err


# ------------------------------------------------------------------------ run folders


def test_resume_from_a_folder_without_a_run_is_refused(tmp_path, capsys):
    err = _cli_error(["train", "--resume", str(tmp_path)], capsys)
    assert f"No config.json in {tmp_path}" in err


def test_resume_from_a_folder_without_a_checkpoint_is_refused(tmp_path, capsys):
    """A run folder whose checkpoint is gone: the error says where none was found."""
    config = TrainConfig(hidden_size=4, out=tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config.to_json()))
    err = _cli_error(["train", "--resume", str(tmp_path)], capsys)
    assert f"No checkpoint at {tmp_path / 'checkpoint.rtrrl'}" in err
    assert "nothing to resume" in err


def test_new_run_in_a_folder_holding_a_run_is_refused_and_nothing_is_overwritten(tmp_path, capsys):
    files = {
        "config.json": b'{"env": "CartPole-v1"}\n',
        "metrics.csv": b"step,seed,eval_return\n500,0,9.0\n",
        "checkpoint.rtrrl": b"RTRRL-CHECKPOINT\n(not a real one)",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(FileExistsError, match="already holds a run"):
        run_training(TrainConfig(hidden_size=4, out=tmp_path), progress=False)
    err = _cli_error(["train", *TINY_FLAGS, "--steps", "500", "--out", str(tmp_path)], capsys)
    assert "already holds a run" in err and f"--resume {tmp_path}" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


@pytest.mark.parametrize("flag", ["--out", "--config"])
def test_resume_with_a_flag_it_would_ignore_is_refused(tmp_path, capsys, flag):
    """A resumed run keeps its folder and saved config: ``--out``/``--config`` beside
    ``--resume`` would be silently ignored."""
    err = _cli_error(["train", "--resume", str(tmp_path), flag, str(tmp_path / "x")], capsys)
    assert f"{flag} cannot be combined with --resume" in err


def test_eval_with_no_episodes_is_refused(tmp_path, capsys):
    err = _cli_error(["eval", "--run", str(tmp_path), "--episodes", "0"], capsys)
    assert "`episodes` (--episodes) must be an integer >= 1, got 0." in err


def test_plot_without_runs_or_evaluations_is_refused(tmp_path, capsys):
    err = _cli_error(["plot", "--out", str(tmp_path / "p.png")], capsys)
    assert "Name one or more run folders" in err
    (tmp_path / "metrics.csv").write_text(",".join(METRIC_COLUMNS) + "\n")
    err = _cli_error(["plot", str(tmp_path), "--out", str(tmp_path / "p.png")], capsys)
    assert "no evaluation yet" in err
    assert not (tmp_path / "p.png").exists()
    with pytest.raises(ValueError, match="Unknown metric 'bogus'"):
        plot_runs({"a": {}}, tmp_path / "p.png", metric="bogus")


def test_env_table_of_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="Unknown source 'gymax': use one of gymnax, popgym"):
        envs.env_table("gymax")


# ------------------------------------------------ inputs that used to crash or pass silently


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Seeds are 32-bit keys: 2**32 used to run as seed 0, 2**64 crashed with OverflowError.
        (["--seed", "4294967296"], "`seed` (--seed) must be an integer in [0, 4294967295]"),
        (["--seed", "18446744073709551616"], "`seed` (--seed) must be an integer in [0,"),
        (["--seed", "4294967295", "--seeds", "2"], "runs seeds up to 4294967296"),
        # An unparsable or tagged option value used to end in a YAML traceback.
        (["--env-option", "memory_length=[1,"], "--env-option 'memory_length=[1,'"),
        (["--env-option", "memory_length=!!python/name:os.system"], "not a YAML scalar"),
        # More XLA threads than cores used to be accepted (and crashed under a memory limit).
        (["--cpu-threads", "100000"], "= 100000 is more than this machine's"),
    ],
)
def test_bad_values_get_one_error_line_naming_the_flag(tmp_path, capsys, argv, expected):
    out = tmp_path / "run"
    err = _cli_error(["train", *argv, "--steps", "100", "--out", str(out)], capsys)
    assert expected in err, err
    assert not out.exists()


def test_a_config_path_that_is_a_folder_is_refused(tmp_path, capsys):
    err = _cli_error(["train", "--config", str(tmp_path)], capsys)
    assert f"Config file {tmp_path} is not a file" in err


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_eval_checks_its_seed_like_train(tmp_path, capsys, seed):
    err = _cli_error(["eval", "--run", str(tmp_path), "--seed", seed], capsys)
    assert f"`seed` (--seed) must be an integer in [0, 4294967295], got {seed}" in err


@pytest.mark.parametrize("out", ["folder", ""])
def test_a_new_run_into_a_non_empty_folder_that_is_not_a_run_is_refused(
    tmp_path, capsys, monkeypatch, out
):
    """``--out`` at a folder of other files (or ``--out ''``: the working directory) used to
    overwrite ``config.json`` and ``summary.json`` there; now nothing there changes."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / out
    folder.mkdir(exist_ok=True)
    files = {"config.json": b"{}\n", "notes.txt": b"mine\n"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    err = _cli_error(["train", *TINY_FLAGS, "--steps", "500", "--out", out], capsys)
    assert "is not empty and holds no rtrrl run (notes.txt)" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_a_folder_left_by_a_run_stopped_before_its_first_evaluation_can_be_reused(tmp_path):
    """Such a run left only its config.json (and perhaps a temporary file); starting again
    with the same --out is allowed."""
    (tmp_path / "config.json").write_text("{}\n")
    (tmp_path / ".metrics.csv-x1y2z3").write_text("")
    assert main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(tmp_path)]) == 0


def test_a_config_file_with_a_key_given_twice_is_refused(tmp_path, capsys):
    """YAML would let the last ``lr-cell`` win without a word."""
    path = tmp_path / "run.yaml"
    path.write_text("lr-cell: 1e-3\nsteps: 500\nlr-cell: 1e-2\n")
    err = _cli_error(["train", "--config", str(path)], capsys)
    assert "duplicate key 'lr-cell'" in err and str(path) in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]\n", "holds a JSON list, not the object"),
        ("{oops", "is not valid JSON"),
        (
            '{"env": "CartPole-v1", "hiden_size": 3}\n',
            "unknown setting(s) 'hiden_size' (did you mean 'hidden_size'?)",
        ),
    ],
)
def test_a_damaged_config_json_is_refused_by_eval_and_resume(tmp_path, capsys, content, expected):
    (tmp_path / "config.json").write_text(content)
    for argv in (["eval", "--run", str(tmp_path)], ["train", "--resume", str(tmp_path)]):
        err = _cli_error(argv, capsys)
        assert expected in err, err


def test_a_config_json_that_is_a_folder_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").mkdir()
    err = _cli_error(["eval", "--run", str(tmp_path)], capsys)
    assert "config.json is not a file" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_only_regular_files_are_read_as_checkpoints(tmp_path, kind):
    """A FIFO used to block `eval` forever and a link to /dev/zero to eat all memory."""
    path = tmp_path / "checkpoint.rtrrl"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match="is not a regular file"):
        read_checkpoint_header(path)
