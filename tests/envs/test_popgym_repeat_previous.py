"""RepeatPrevious port vs the `popgym` package: same decks, same actions, every step."""

import numpy as np
import pytest
from _popgym_reference import deal_order, run_agreement

from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id


def _policies(ref, rng, steps):
    """Random, always-right and always-wrong answers for the deck popgym shuffled."""
    order = deal_order(ref.deck)
    suits = ref.deck.suits_idx[order]
    # Step t is scored against the card dealt k - 1 deals before card t (popgym's hand[-k]).
    target = np.arange(steps) + 1 - ref.k
    random = rng.integers(0, 4, steps)
    right = np.where(target >= 0, suits[np.maximum(target, 0)], random)
    wrong = (right + rng.integers(1, 4, steps)) % 4
    return {"random": random, "right": right, "wrong": wrong}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_agrees_with_popgym(difficulty):
    env_id = popgym_id("RepeatPrevious", difficulty)
    num_cards = {"Easy": 52, "Medium": 104, "Hard": 156}[difficulty]
    result = run_agreement(
        env_id,
        steps=num_cards - 1,
        decks=lambda ref: [deal_order(ref.deck)],
        policies=_policies,
    )
    # One step per card after the first; popgym's returns span exactly [-1, 1].
    assert np.all(result.lengths() == num_cards - 1)
    for policy, bound in (("right", 1.0), ("wrong", -1.0)):
        ref_returns, port_returns = result.returns(policy)
        np.testing.assert_allclose(ref_returns, bound, atol=1e-9)
        np.testing.assert_allclose(port_returns, bound, atol=1e-9)
