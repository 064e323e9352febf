"""Autoencode port vs the `popgym` package: same decks, same actions, every step."""

import numpy as np
import pytest
from _popgym_reference import deal_order, run_agreement

from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id


def _policies(ref, rng, steps):
    """Random, always-right and always-wrong recitals for the deck popgym shuffled."""
    suits = ref.deck.suits_idx[deal_order(ref.deck)]
    num_cards = len(suits)
    random = rng.integers(0, 4, steps)
    # N - 1 watch steps (actions ignored), then the suits last card first.
    right = random.copy()
    right[num_cards - 1 :] = suits[::-1]
    wrong = right.copy()
    wrong[num_cards - 1 :] = (suits[::-1] + rng.integers(1, 4, num_cards)) % 4
    return {"random": random, "right": right, "wrong": wrong}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_agrees_with_popgym(difficulty):
    env_id = popgym_id("Autoencode", difficulty)
    num_cards = {"Easy": 52, "Medium": 104, "Hard": 156}[difficulty]
    result = run_agreement(
        env_id,
        steps=2 * num_cards - 1,
        decks=lambda ref: [deal_order(ref.deck)],
        policies=_policies,
    )
    # N - 1 watch steps then N recitations; popgym's returns span exactly [-1, 1].
    assert np.all(result.lengths() == 2 * num_cards - 1)
    for policy, bound in (("right", 1.0), ("wrong", -1.0)):
        ref_returns, port_returns = result.returns(policy)
        np.testing.assert_allclose(ref_returns, bound, atol=1e-9)
        np.testing.assert_allclose(port_returns, bound, atol=1e-9)
