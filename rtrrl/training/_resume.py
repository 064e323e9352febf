"""Checks that a checkpoint's states and bookkeeping fit the learner and loop resuming them."""

import jax
import jax.numpy as jnp

from ._chunk import init_states
from ._records import TrainProgress


def check_resume_fits(states, book: TrainProgress, algorithm, env, config, plan) -> None:
    """A `ValueError` unless ``(states, book)`` came from this learner and `LoopConfig`.

    The states must be shaped like fresh ones (seeds, environments, cell sizes), and the
    steps done must be whole chunks of this plan (a changed ``eval_every`` or ``num_envs``
    would shift every later chunk's keys and evaluations). Only ``total_steps`` and
    ``patience`` may change on a resume.
    """
    advice = (
        "Resume with the learner and LoopConfig of the run; only total_steps and patience may "
        "change."
    )
    expected = jax.eval_shape(lambda: init_states(algorithm, env, config))
    got, got_def = jax.tree_util.tree_flatten_with_path(states)
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    if got_def != want_def:
        raise ValueError(
            f"train(resume=...): the states do not have this learner's structure. {advice}"
        )
    for (path, leaf), (_, spec) in zip(got, want, strict=True):
        if (jnp.shape(leaf), jnp.result_type(leaf)) != (spec.shape, spec.dtype):
            raise ValueError(
                f"train(resume=...): state leaf {jax.tree_util.keystr(path)} has "
                f"{jnp.result_type(leaf)}{list(jnp.shape(leaf))}, but this learner with "
                f"num_seeds={config.num_seeds} and num_envs={config.num_envs} makes "
                f"{spec.dtype}{list(spec.shape)}. {advice}"
            )
    if book.steps_done != book.chunk * plan.env_steps_per_chunk:
        raise ValueError(
            f"train(resume=...): the run did {book.chunk} chunks and {book.steps_done} steps, "
            f"but this LoopConfig makes chunks of {plan.env_steps_per_chunk} steps (eval_every="
            f"{config.eval_every}, num_envs={config.num_envs}). {advice}"
        )
