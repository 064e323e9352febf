"""Concentration port vs the `popgym` package: same layout, same actions, every step."""

import numpy as np
import pytest
from _popgym_reference import run_agreement

from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id


def _layout(ref):
    """popgym's ``deck.idx[i]`` is the card lying at position ``i``."""
    return [np.asarray(ref.deck.idx)]


def _policies(ref, rng, steps):
    """Action sequences covering every rule of the game.

    - ``random``: uniform positions (matches, mismatches, the odd face-up card);
    - ``sticky``: often repeats the last position: turns the same card twice and turns
      cards that a match just left face up;
    - ``perfect``: turns the pairs in order, matching every time (terminates early);
    - ``mismatch``: turns the same two non-matching cards forever (the worst return);
    - ``late``: mismatches until the last ``N`` steps, then plays perfectly, so the final
      match falls on the time limit's step (popgym then sets both flags).
    """
    kinds = ref.deck_idx_type[np.asarray(ref.deck.idx)]
    num_cards = len(kinds)
    pairs = np.concatenate(
        [np.flatnonzero(kinds == kind) for kind in np.unique(kinds)]
    )  # positions grouped by kind; each kind has an even count, so neighbours pair up
    different = int(np.flatnonzero(kinds != kinds[0])[0])
    mismatch = np.resize([0, different], steps)
    random = rng.integers(0, num_cards, steps)
    sticky = random.copy()
    repeat = rng.random(steps) < 0.3
    for t in range(1, steps):
        if repeat[t]:
            sticky[t] = sticky[t - 1]
    perfect = np.resize(pairs, steps)
    late = np.concatenate([mismatch[: steps - num_cards], pairs])
    return {
        "random": random,
        "sticky": sticky,
        "perfect": perfect,
        "mismatch": mismatch,
        "late": late,
    }


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_agrees_with_popgym(difficulty):
    env_id = popgym_id("Concentration", difficulty)
    num_cards = {"Easy": 52, "Medium": 104, "Hard": 52}[difficulty]
    # popgym's time limit ceil(2N - N / (2N - 1)).
    limit = {"Easy": 104, "Medium": 208, "Hard": 104}[difficulty]
    result = run_agreement(env_id, steps=limit, decks=_layout, policies=_policies)

    by_policy = {}
    for (_, name), episode in zip(result.labels, result.reference, strict=True):
        by_policy.setdefault(name, []).append(episode)
    # A perfect player matches a pair every two steps and gets exactly 1.
    assert all(ep.length == num_cards and ep.terminated[-1] for ep in by_policy["perfect"])
    for policy, bound in (("perfect", 1.0), ("mismatch", -1.0)):
        ref_returns, port_returns = result.returns(policy)
        np.testing.assert_allclose(ref_returns, bound, atol=1e-9)
        np.testing.assert_allclose(port_returns, bound, atol=1e-9)
    # Everything else runs to the time limit; the late finisher ends on the limit's step
    # with both popgym flags set (the port reports it as terminated only).
    for name in ("random", "sticky", "mismatch", "late"):
        assert all(ep.length == limit for ep in by_policy[name]), name
    assert all(ep.terminated[-1] and ep.truncated[-1] for ep in by_policy["late"])
    for _, returns in (result.returns(name) for name in by_policy):
        assert np.all((returns >= -1 - 1e-9) & (returns <= 1 + 1e-9))
