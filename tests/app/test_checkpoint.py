"""Checkpoints (`rtrrl.app.checkpoint`): exact round trip, refusal of corrupt or mismatched files
with a clear message, and atomic writes."""

import hashlib
import json
import math
import os
import struct

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _training_helpers import (
    assert_trees_equal,
    leaves,
    persistent_compilation_cache,
    tiny_config,
)

from rtrrl.app import _files
from rtrrl.app.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from rtrrl.app.cli import main
from rtrrl.app.config import build_algorithm, build_env
from rtrrl.training import TrainProgress, init_states

MAGIC = b"RTRRL-CHECKPOINT\n"
HEADER_START = len(MAGIC) + 8


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        yield


@pytest.fixture(scope="module")
def fresh():
    """``(config, states)``: freshly initialised states of a tiny run."""
    config = tiny_config()
    env = build_env(config)
    return config, init_states(build_algorithm(config, env), env, config.loop())


@pytest.fixture(scope="module")
def model(fresh):
    """``(config, states)``: the states of `fresh` moved off their initial values (so that
    loading into freshly initialised states proves something)."""
    config, states = fresh
    return config, jax.tree.map(lambda x: x + 0.25 if eqx.is_inexact_array(x) else x, states)


def _progress() -> TrainProgress:
    """Bookkeeping with every kind of float JSON cannot hold: NaN, inf and -inf."""
    row = {
        "step": 500,
        "seed": 0,
        "eval_return": 12.5,
        "train_return": math.nan,
        "td_error": math.inf,
        "steps_per_second": 1234.5,
    }
    return TrainProgress(
        chunk=1,
        rows=[row],
        best_eval_return=[-math.inf],
        best_step=[0],
        evals_since_best=[1],
        active=[True],
        run_seconds=0.5,
        compile_seconds=math.nan,
        steps_done=500,
    )


@pytest.fixture
def saved(tmp_path, model):
    """A run folder holding one checkpoint; returns ``(folder, config, states)``."""
    config, states = model
    save_checkpoint(tmp_path, states, _progress(), config.fingerprint())
    return tmp_path, config, states


@pytest.fixture
def like(fresh):
    """States to load into: the structure and shapes of the saved ones, other values."""
    return fresh[1]


def test_round_trip_restores_states_progress_and_config(saved, like):
    folder, config, states = saved
    loaded, progress, saved_config = load_checkpoint(folder, like, config.fingerprint())
    assert_trees_equal(loaded, states)
    assert not np.array_equal(leaves(loaded.params)[0], leaves(like.params)[0])
    assert saved_config == config.fingerprint()
    assert (progress.chunk, progress.steps_done, progress.active) == (1, 500, [True])


def test_nan_and_inf_in_progress_survive_the_round_trip_as_strict_json(saved, like):
    """NaN/±inf come back as floats, and the header stays strict JSON (no NaN tokens)."""
    folder, _, _ = saved
    _, progress, _ = load_checkpoint(folder, like)
    row = progress.rows[0]
    assert math.isnan(row["train_return"]) and row["td_error"] == math.inf
    assert progress.best_eval_return == [-math.inf] and math.isnan(progress.compile_seconds)
    assert row["eval_return"] == 12.5 and row["step"] == 500
    data = (folder / CHECKPOINT_NAME).read_bytes()
    (length,) = struct.unpack("<Q", data[len(MAGIC) : HEADER_START])

    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token} in the header")

    json.loads(data[HEADER_START : HEADER_START + length], parse_constant=refuse)


def _header_length(data: bytes) -> int:
    return struct.unpack("<Q", data[len(MAGIC) : HEADER_START])[0]


def _flip_payload_byte(data: bytes) -> bytes:
    middle = HEADER_START + _header_length(data) + 100
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def _bad_json(data: bytes) -> bytes:
    # Same length, so only the header's syntax is wrong.
    return data[:HEADER_START] + b"#" + data[HEADER_START + 1 :]


def _with_header(data: bytes, edit) -> bytes:
    length = _header_length(data)
    header = json.loads(data[HEADER_START : HEADER_START + length])
    new = json.dumps(edit(header)).encode()
    return MAGIC + struct.pack("<Q", len(new)) + new + data[HEADER_START + length :]


CORRUPTIONS = {
    "truncated": (lambda d: d[: len(d) - 50], "does not match the checksum"),
    "truncated in the header": (lambda d: d[: HEADER_START + 40], "not valid JSON"),
    "truncated in the length field": (lambda d: d[: len(MAGIC) + 3], "truncated"),
    "empty": (lambda d: b"", "not an rtrrl checkpoint"),
    "payload byte flipped": (_flip_payload_byte, "does not match the checksum"),
    "garbage": (lambda d: bytes(range(256)) * 8, "not an rtrrl checkpoint"),
    "wrong magic": (lambda d: b"PICKLE-CHECKPOINT\n" + d[len(MAGIC) + 1 :], "bad magic"),
    "bad JSON header": (_bad_json, "not valid JSON"),
    "header not an object": (
        lambda d: MAGIC + struct.pack("<Q", 2) + b"[]" + d[HEADER_START + _header_length(d) :],
        "header",
    ),
    "newer format": (lambda d: _with_header(d, lambda h: {**h, "format": 99}), "format 99"),
    "header edited, still valid JSON": (
        lambda d: _with_header(
            d, lambda h: {**h, "progress": {**h["progress"], "chunk": h["progress"]["chunk"] + 1}}
        ),
        "does not match the checksum",
    ),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_corrupt_checkpoint_is_refused_with_a_clear_message(saved, like, corruption):
    folder, config, _ = saved
    corrupt, expected = CORRUPTIONS[corruption]
    path = folder / CHECKPOINT_NAME
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(CheckpointError, match=expected) as error:
        load_checkpoint(folder, like, config.fingerprint())
    assert str(path) in str(error.value)


def test_format_1_checkpoints_are_still_read(saved, like):
    """A format-1 file (checksum over the payload only, before 2026-11-29) loads unchanged."""
    folder, config, states = saved
    path = folder / CHECKPOINT_NAME
    data = path.read_bytes()
    length = _header_length(data)
    header = json.loads(data[HEADER_START : HEADER_START + length])
    payload = data[HEADER_START + length :]
    old = {**header, "format": 1, "sha256": hashlib.sha256(payload).hexdigest()}
    path.write_bytes(_with_header(data, lambda _: old))
    loaded, progress, _ = load_checkpoint(folder, like, config.fingerprint())
    assert_trees_equal(loaded, states)
    assert (progress.chunk, progress.steps_done, progress.active) == (1, 500, [True])


def _as_format_2(data: bytes, config_edit=lambda config: config) -> bytes:
    """`data` rewritten as a format-2 file (checksum over the canonical header and payload)."""
    length = _header_length(data)
    header = json.loads(data[HEADER_START : HEADER_START + length])
    payload = data[HEADER_START + length :]
    core = {"format": 2, "config": config_edit(header["config"]), "progress": header["progress"]}
    canonical = json.dumps(core, sort_keys=True, separators=(",", ":")).encode()
    old = {**core, "sha256": hashlib.sha256(canonical + payload).hexdigest()}
    return _with_header(data, lambda _: old)


def test_format_2_checkpoints_load_unless_they_hold_the_old_lru_layout(saved, like):
    """Format 3 changed only the LRU's parameter layout: a format-2 run of another cell loads
    unchanged; a format-2 LRU run, whose arrays no longer fit, is refused saying why."""
    folder, config, states = saved
    path = folder / CHECKPOINT_NAME
    data = path.read_bytes()
    path.write_bytes(_as_format_2(data))
    loaded, _, _ = load_checkpoint(folder, like, config.fingerprint())
    assert_trees_equal(loaded, states)
    path.write_bytes(_as_format_2(data, lambda c: {**c, "cell": "lru"}))
    with pytest.raises(CheckpointError, match=r"LRU run saved before .* format 2") as error:
        load_checkpoint(folder, like)
    assert str(folder) in str(error.value)


def test_missing_checkpoint_is_refused(tmp_path, like):
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        load_checkpoint(tmp_path, like)


def test_mismatched_config_is_refused_naming_the_differing_entries(saved, like):
    """hidden_size and lr_actor differ: both are named with both values, nothing else is."""
    folder, config, _ = saved
    now = {**config.fingerprint(), "hidden_size": 8, "lr_actor": 0.5}
    with pytest.raises(CheckpointError, match="different configuration") as error:
        load_checkpoint(folder, like, now)
    message = str(error.value)
    assert "hidden_size: checkpoint=4, now=8" in message
    assert "lr_actor: checkpoint=0.001, now=0.5" in message
    assert "gamma" not in message and "env" not in message.split("entries:")[1]


def test_states_of_another_shape_are_refused(saved, like):
    """Without a config check, states of another size still cannot be read silently."""
    folder, _, _ = saved
    weight = like.params.critic.weight
    shape = (*weight.shape[:-1], weight.shape[-1] + 1)
    wider = eqx.tree_at(lambda s: s.params.critic.weight, like, jnp.zeros(shape, weight.dtype))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_checkpoint(folder, wider)


def test_atomic_write_replaces_the_file_and_leaves_no_temporary_files(saved, like):
    folder, config, states = saved
    progress = _progress()
    progress.chunk = 2
    path = save_checkpoint(folder / CHECKPOINT_NAME, states, progress, config.fingerprint())
    assert path == folder / CHECKPOINT_NAME
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME]
    _, loaded, _ = load_checkpoint(folder, like)
    assert loaded.chunk == 2


def test_failed_write_keeps_the_old_checkpoint_and_no_temporary_file(saved, like, monkeypatch):
    """A crash between writing and renaming (here: the rename fails) changes nothing."""
    folder, config, states = saved
    before = (folder / CHECKPOINT_NAME).read_bytes()

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(_files.os, "replace", crash)
    newer = jax.tree.map(lambda x: x * 2 if eqx.is_inexact_array(x) else x, states)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(folder, newer, _progress(), config.fingerprint())
    monkeypatch.undo()
    assert (folder / CHECKPOINT_NAME).read_bytes() == before
    assert sorted(os.listdir(folder)) == [CHECKPOINT_NAME]
    load_checkpoint(folder, like, config.fingerprint())


def test_loading_without_a_template_is_refused(saved):
    folder, config, _ = saved
    with pytest.raises(TypeError, match="`like` must be states shaped like the saved ones"):
        load_checkpoint(folder, None, config.fingerprint())


def _hand_made(data: bytes, edit) -> bytes:
    """`data` with its header replaced by ``edit(header)`` and a checksum that matches it,
    as someone who read `rtrrl.app.checkpoint` could make: only the contents can refuse it."""
    length = _header_length(data)
    header = json.loads(data[HEADER_START : HEADER_START + length])
    payload = data[HEADER_START + length :]
    new = edit({k: v for k, v in header.items() if k != "sha256"})
    covered = json.dumps(new, sort_keys=True, separators=(",", ":")).encode() + payload
    new["sha256"] = hashlib.sha256(covered).hexdigest()
    return _with_header(data, lambda _: new)


HAND_MADE = {
    "nested 200k deep": (
        lambda d: MAGIC + struct.pack("<Q", 200_000) + b"[" * 200_000,
        "nested too deeply",
    ),
    "an entry missing": (
        lambda d: _hand_made(d, lambda h: {k: v for k, v in h.items() if k != "config"}),
        "not a checkpoint that rtrrl wrote: its header has the entries",
    ),
    "an extra entry": (
        lambda d: _hand_made(d, lambda h: {**h, "pickle": "cos\nsystem\n"}),
        "not a checkpoint that rtrrl wrote: its header has the entries",
    ),
    "an unknown progress entry": (
        lambda d: _hand_made(d, lambda h: {**h, "progress": {**h["progress"], "x": 1}}),
        "its config or progress entry is not what rtrrl saves",
    ),
    "config not an object": (
        lambda d: _hand_made(d, lambda h: {**h, "config": [1]}),
        "its config or progress entry is not what rtrrl saves",
    ),
}


@pytest.mark.parametrize("case", HAND_MADE, ids=list(HAND_MADE))
def test_hand_made_checkpoint_headers_get_one_error_line_naming_the_file(saved, case, capsys):
    """Headers with a matching checksum but entries missing or extra, and JSON nested 200k
    deep (a RecursionError, or later a KeyError or TypeError, before): ``rtrrl eval`` prints
    one ``error:`` line that names the file and exits 2, before anything is compiled."""
    folder, config, _ = saved
    (folder / "config.json").write_text(json.dumps(config.to_json()))
    make, expected = HAND_MADE[case]
    path = folder / CHECKPOINT_NAME
    path.write_bytes(make(path.read_bytes()))
    assert main(["eval", "--run", str(folder)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(path) in errors[0] and expected in errors[0], err
    assert "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_eval_reads_only_a_regular_file_as_a_checkpoint(saved, kind, capsys):
    """A FIFO used to block `eval` forever, a link to /dev/zero to eat all memory."""
    folder, config, _ = saved
    (folder / "config.json").write_text(json.dumps(config.to_json()))
    path = folder / CHECKPOINT_NAME
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    assert main(["eval", "--run", str(folder)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(path) in errors[0], err
