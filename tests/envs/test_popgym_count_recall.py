"""CountRecall port vs the `popgym` package: same two decks, same actions, every step."""

import numpy as np
import pytest
from _popgym_reference import deal_order, run_agreement

from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id


def _decks(ref):
    """popgym shuffles the value deck, then the query deck; the port draws them in that order."""
    return [deal_order(ref.value_deck), deal_order(ref.query_deck)]


def _policies(ref, rng, steps):
    """Random, always-right and always-wrong counts for the decks popgym shuffled."""
    values, queries = (ref.deck_idx_type[order] for order in _decks(ref))
    # At step t the answer is how many of the values shown so far (0..t) match query t.
    right = np.array([np.sum(values[: t + 1] == queries[t]) for t in range(steps)])
    num_actions = ref.action_space.n
    wrong = (right + rng.integers(1, num_actions, steps)) % num_actions
    return {"random": rng.integers(0, num_actions, steps), "right": right, "wrong": wrong}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_agrees_with_popgym(difficulty):
    env_id = popgym_id("CountRecall", difficulty)
    num_cards = {"Easy": 52, "Medium": 104, "Hard": 208}[difficulty]
    result = run_agreement(env_id, steps=num_cards - 1, decks=_decks, policies=_policies)
    # One step per card after the first; popgym's returns span exactly [-1, 1].
    assert np.all(result.lengths() == num_cards - 1)
    for policy, bound in (("right", 1.0), ("wrong", -1.0)):
        ref_returns, port_returns = result.returns(policy)
        np.testing.assert_allclose(ref_returns, bound, atol=1e-9)
        np.testing.assert_allclose(port_returns, bound, atol=1e-9)
