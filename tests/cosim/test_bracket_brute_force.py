"""A finite game small enough to solve by brute force: the bracket's argument holds exactly.

One cluster of three households, three steps, a battery with SoE in {0, 1, 2}
kWh, moves of −1, 0 or +1 kWh, a loss of 1 kWh with probability 0.2 after the
move, base load − PV of 0 or 1 kWh with probability ½ each, and the price
``π(m) = 0.1 + 0.05·m`` of the cluster's mean exchange ``m`` — increasing, as
the project's clearing rule is. Household 0 deviates with local information
(its step and SoE); the others play a fixed law.

The test computes, independently of the co-simulation:

* the deviator's cost under any policy by **enumerating the whole finite game**
  (every household's state, move outcome and base load), and checks it equals
  the decomposition :mod:`cosim.studies.bracket` rests on — the expectation
  over the deviator's own law of ``F_k(c)``, the bill averaged over the
  others' per-step marginal;
* the exact ε_N: the law's cost minus the best of **every** deterministic
  Markov policy of the deviator (3⁹ of them);
* the bracket of the module's construction: the upper bound from the
  relaxation ``V(q) + Σ_k (E0_k + a_k)``, the lower bound from the price taker
  at ``q = π̄ + b``; and checks ``lower ≤ ε_N ≤ upper``.
"""

from __future__ import annotations

import itertools

import numpy as np

N = 3
STEPS = 3
LEVELS = 3
MOVES = (-1, 0, 1)
LOSS = 0.2
EXO = ((0, 0.5), (1, 0.5))
START = 1
KAPPA = 0.01
TERMINAL = -0.05
LAW = np.array([[1, 0, -1]] * STEPS)  # the others' (and the law's) move per (step, SoE)


def price(m: float) -> float:
    return 0.1 + 0.05 * m


def move(s: int, u: int) -> int:
    """The move the bounds allow."""
    return min(max(s + u, 0), LEVELS - 1) - s


def after(s: int, u: int) -> list[tuple[int, float]]:
    """Next SoE and its probability."""
    t = s + move(s, u)
    return [(t, 1.0)] if t == 0 else [(t - 1, LOSS), (t, 1.0 - LOSS)]


def own_law(policy: np.ndarray) -> list[dict[int, float]]:
    """Distribution of a household's controlled exchange (the realised move) per step."""
    dist = {START: 1.0}
    out = []
    for k in range(STEPS):
        moves: dict[int, float] = {}
        nxt: dict[int, float] = {}
        for s, p in dist.items():
            c = move(s, int(policy[k, s]))
            moves[c] = moves.get(c, 0.0) + p
            for t, q in after(s, int(policy[k, s])):
                nxt[t] = nxt.get(t, 0.0) + p * q
        out.append(moves)
        dist = nxt
    return out


def private(policy: np.ndarray) -> float:
    """Expected degradation and terminal value."""
    dist, cost = {START: 1.0}, 0.0
    for k in range(STEPS):
        nxt: dict[int, float] = {}
        for s, p in dist.items():
            cost += p * KAPPA * move(s, int(policy[k, s])) ** 2
            for t, q in after(s, int(policy[k, s])):
                nxt[t] = nxt.get(t, 0.0) + p * q
        dist = nxt
    return cost + sum(p * TERMINAL * s for s, p in dist.items())


def others_sum() -> list[dict[int, float]]:
    """Per step, the distribution of the others' summed exchange (independent households)."""
    one = own_law(LAW)
    out = []
    for k in range(STEPS):
        single: dict[int, float] = {}
        for c, p in one[k].items():
            for x, px in EXO:
                single[c + x] = single.get(c + x, 0.0) + p * px
        total = {0: 1.0}
        for _ in range(N - 1):
            total = {
                a + b: sum(
                    pa * pb
                    for a2, pa in total.items()
                    for b2, pb in single.items()
                    if a2 + b2 == a + b
                )
                for a in total
                for b in single
            }
        out.append(total)
    return out


OTHERS = others_sum()


def bill(k: int, c: int) -> float:
    """``F_k(c)``: the deviator's expected bill for a controlled exchange ``c``."""
    return sum(
        px * po * (x + c) * price((o + x + c) / N) for x, px in EXO for o, po in OTHERS[k].items()
    )


def cost(policy: np.ndarray) -> float:
    """The decomposition: ``Σ_k E F_k(c_k) + private``."""
    law = own_law(policy)
    return sum(p * bill(k, c) for k in range(STEPS) for c, p in law[k].items()) + private(policy)


def enumerated_cost(policy: np.ndarray) -> float:
    """The deviator's expected cost by enumerating the whole finite game."""
    states = {(START,) * N: 1.0}
    total = 0.0
    for k in range(STEPS):
        nxt: dict[tuple[int, ...], float] = {}
        for state, p in states.items():
            rules = [policy] + [LAW] * (N - 1)
            moves = [move(s, int(r[k, s])) for s, r in zip(state, rules, strict=True)]
            for exo in itertools.product(EXO, repeat=N):
                px = float(np.prod([e[1] for e in exo]))
                e = [c + x for c, (x, _) in zip(moves, exo, strict=True)]
                total += p * px * (e[0] * price(sum(e) / N) + KAPPA * moves[0] ** 2)
            for outcome in itertools.product(
                *[after(s, int(r[k, s])) for s, r in zip(state, rules, strict=True)]
            ):
                key = tuple(t for t, _ in outcome)
                nxt[key] = nxt.get(key, 0.0) + p * float(np.prod([q for _, q in outcome]))
        states = nxt
    return total + sum(p * TERMINAL * s[0] for s, p in states.items())


def price_taker(q: np.ndarray) -> tuple[float, np.ndarray]:
    """Optimal cost and policy of a price taker billed ``q_k`` per kWh of controlled exchange."""
    value = np.array([TERMINAL * s for s in range(LEVELS)], dtype=float)
    policy = np.zeros((STEPS, LEVELS), dtype=int)
    for k in reversed(range(STEPS)):
        new = np.empty(LEVELS)
        for s in range(LEVELS):
            options = [
                q[k] * move(s, u)
                + KAPPA * move(s, u) ** 2
                + sum(p * value[t] for t, p in after(s, u))
                for u in MOVES
            ]
            best = int(np.argmin(options))
            policy[k, s], new[s] = MOVES[best], options[best]
        value = new
    return float(value[START]), policy


def test_the_decomposition_is_the_finite_game():
    """Own paths × the others' per-step marginal = the whole game enumerated."""
    rng = np.random.default_rng(0)
    for policy in [LAW, rng.choice(MOVES, size=(STEPS, LEVELS)), np.zeros_like(LAW)]:
        assert abs(cost(policy) - enumerated_cost(policy)) <= 1e-13


def test_the_bracket_contains_the_exact_epsilon():
    j_law = cost(LAW)
    best = min(
        cost(np.array(moves).reshape(STEPS, LEVELS))
        for moves in itertools.product(MOVES, repeat=STEPS * LEVELS)
    )
    epsilon = j_law - best
    assert epsilon > 1e-4  # the law is not a best response: the bracket has work to do

    # the bracket as cosim.studies.bracket builds it
    pbar = np.array([sum(p * price(o / N) for o, p in OTHERS[k].items()) for k in range(STEPS)])
    e0 = np.array(
        [
            sum(px * po * x * price(o / N) for x, px in EXO for o, po in OTHERS[k].items())
            for k in range(STEPS)
        ]
    )
    mean_c = np.array([sum(c * p for c, p in law.items()) for law in own_law(LAW)])
    b = 2 * 0.05 * (0.5 + mean_c) / N  # slope of the own-price cost at the law's mean exchange
    q = pbar + b
    a = np.array([min(bill(k, c) - e0[k] - q[k] * c for c in MOVES) for k in range(STEPS)])
    v, deviation = price_taker(q)
    upper = j_law - (v + e0.sum() + a.sum())
    lower = j_law - cost(deviation)
    assert 0.0 < lower <= epsilon + 1e-15
    assert epsilon <= upper + 1e-15
    assert upper - lower < 0.5 * epsilon  # and the bracket is informative
