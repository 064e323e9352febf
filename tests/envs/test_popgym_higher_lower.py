"""HigherLower port vs the `popgym` package: same decks, same actions, every step."""

import numpy as np
import pytest
from _popgym_reference import deal_order, run_agreement

from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id


def _policies(ref, rng, steps):
    """Random bets, a clairvoyant bettor that sees the next card, and its opposite."""
    ranks = ref.deck.ranks_idx[deal_order(ref.deck)]
    # Action 0 bets "higher"; on equal ranks every bet scores 0.
    right = np.where(ranks[1:] > ranks[:-1], 0, 1)
    return {"random": rng.integers(0, 2, steps), "right": right, "wrong": 1 - right}


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_agrees_with_popgym(difficulty):
    env_id = popgym_id("HigherLower", difficulty)
    num_cards = {"Easy": 52, "Medium": 104, "Hard": 156}[difficulty]
    result = run_agreement(
        env_id,
        steps=num_cards - 1,
        decks=lambda ref: [deal_order(ref.deck)],
        policies=_policies,
    )
    assert np.all(result.lengths() == num_cards - 1)
    # The best return is the share of non-tied transitions, (N - 1 - ties) / N; the worst
    # its negative.
    ref_best, port_best = result.returns("right")
    ref_worst, port_worst = result.returns("wrong")
    np.testing.assert_allclose(port_best, ref_best, atol=1e-12)
    np.testing.assert_allclose(port_worst, ref_worst, atol=1e-12)
    np.testing.assert_allclose(ref_worst, -ref_best, atol=1e-12)
    assert np.all((ref_best > 0.5) & (ref_best < (num_cards - 1) / num_cards + 1e-12))
    labels = [name for _, name in result.labels]
    right = [ep for ep, name in zip(result.reference, labels, strict=True) if name == "right"]
    for episode, ref_return in zip(right, ref_best, strict=True):
        ranks = np.asarray(episode.obs)  # popgym observes the rank of the card just dealt
        ties = np.sum(ranks[1:] == ranks[:-1])
        np.testing.assert_allclose(ref_return, (num_cards - 1 - ties) / num_cards, atol=1e-12)
