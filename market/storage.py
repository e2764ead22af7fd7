"""Pooled prosumer storage of one aggregator: SoE grid, actions, masks, rewards.

Seed 003 (He & Liu) §3: an aggregator controls its prosumers' storage through
discrete actions, each a percentage of capacity to charge (a > 0) or discharge
(a < 0). With efficiency η the state of energy (SoE, a fraction of capacity)
moves by, eqs. (9)–(11),

    δ(a) = η·a·1{a > 0} + (a/η)·1{a < 0},        s' = s + δ(a)

so charging ``a`` from the grid stores ``η·a`` and delivering ``|a|`` to the
grid drains ``|a|/η``. Invalid actions — those that would leave ``[0, 1]`` —
are masked out (§3, "Action masking").

The SoE is held on a grid of ``soe_levels + 1`` points ``0, 1/K, …, 1``. To
keep eq. (11) on that grid, the action set is chosen as the preimage of grid
steps: the action that moves the SoE by ``j/K`` has grid-side size
``δ⁻¹(j/K)`` = ``j/(K·η)`` when charging and ``j·η/K`` when discharging. Every
transition is then exact, and the dynamic-programming learner solves the
discrete problem without interpolation.

The single-period reward, eq. (12), is what the aggregator pays for its
prosumers' grid energy at the believed LMP; per unit of storage capacity
(MWh) and leaving out the net-load term, which no action changes:

    r(τ, a) = −b_τ · a          [$ per MWh of capacity]

with ``b_τ`` the LMP belief of the step's time-of-day slot τ ($/MWh).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["StorageModel", "deterministic_policy_value", "policy_value", "rewards"]


@dataclass(frozen=True)
class StorageModel:
    """The discrete storage MDP shared by every learner (eqs. (9)–(12)).

    Actions are indexed ``0 … 2m`` for SoE moves ``−m/K … +m/K``: index ``m``
    is "do nothing".
    """

    soe_levels: int = 10
    """K: the SoE grid is ``0, 1/K, …, 1`` (K + 1 states)."""
    max_action_levels: int = 5
    """m: the largest action moves the SoE by ``m/K`` of capacity in one step."""
    efficiency: float = 0.95
    """η of eqs. (9)–(10), one way (round trip η²)."""
    discount: float = 0.99
    """γ of eq. (13), per step."""

    def __post_init__(self) -> None:
        if self.soe_levels < 1:
            raise ValueError(f"soe_levels: {self.soe_levels} must be ≥ 1")
        if not 1 <= self.max_action_levels <= self.soe_levels:
            raise ValueError(
                f"max_action_levels: {self.max_action_levels} must lie in [1, soe_levels]"
            )
        if not 0.0 < self.efficiency <= 1.0:
            raise ValueError(f"efficiency: {self.efficiency} must lie in (0, 1]")
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount: {self.discount} must lie in [0, 1)")

    @property
    def n_soe(self) -> int:
        """Number of SoE grid points (K + 1)."""
        return self.soe_levels + 1

    @property
    def n_actions(self) -> int:
        """Number of actions (2m + 1)."""
        return 2 * self.max_action_levels + 1

    @property
    def idle_action(self) -> int:
        """Index of the "do nothing" action."""
        return self.max_action_levels

    @cached_property
    def soe(self) -> NDArray[np.float64]:
        """SoE of each grid point (fraction of capacity)."""
        return _ro(np.arange(self.n_soe) / self.soe_levels)

    @cached_property
    def soe_step(self) -> NDArray[np.intp]:
        """SoE grid steps j of each action (−m … m)."""
        return _ro(np.arange(-self.max_action_levels, self.max_action_levels + 1))

    @cached_property
    def grid_energy(self) -> NDArray[np.float64]:
        """Grid-side energy a of each action (fraction of capacity): δ⁻¹(j/K), eq. (10)."""
        delta = self.soe_step / self.soe_levels
        eta = self.efficiency
        return _ro(np.where(delta > 0, delta / eta, delta * eta))

    @cached_property
    def mask(self) -> NDArray[np.bool_]:
        """Valid actions per SoE level, shape ``(n_soe, n_actions)``: SoE stays in [0, 1]."""
        target = np.arange(self.n_soe)[:, None] + self.soe_step[None, :]
        return _ro((target >= 0) & (target <= self.soe_levels))

    @cached_property
    def next_soe(self) -> NDArray[np.intp]:
        """Next SoE index per (SoE, action), eq. (11); clipped where the action is masked."""
        target = np.arange(self.n_soe)[:, None] + self.soe_step[None, :]
        return _ro(np.clip(target, 0, self.soe_levels))

    def soe_index(self, fraction: float) -> int:
        """Nearest SoE grid index of a fraction of capacity."""
        return int(np.clip(round(fraction * self.soe_levels), 0, self.soe_levels))


def rewards(model: StorageModel, belief: ArrayLike) -> NDArray[np.float64]:
    """Single-period reward of eq. (12) per slot and action, per MWh of capacity.

    Parameters
    ----------
    model
        The storage MDP.
    belief
        LMP belief ($/MWh), shape ``(..., slots)``.

    Returns
    -------
    numpy.ndarray
        ``−b_τ · a``, shape ``(..., slots, n_actions)``.
    """
    b = np.asarray(belief, dtype=float)
    return -b[..., None] * model.grid_energy


def policy_value(model: StorageModel, belief: ArrayLike, policy: ArrayLike) -> NDArray[np.float64]:
    """Exact discounted value (eq. (13)) of a stationary periodic policy.

    The state is (slot τ, SoE s); a step moves τ → τ + 1 (mod slots) and
    s → s + δ(a). The value solves ``(I − γ P_π) V = r_π`` exactly.

    Parameters
    ----------
    model
        The storage MDP.
    belief
        LMP belief ($/MWh), shape ``(n_agents, slots)``.
    policy
        Action probabilities, shape ``(n_agents, slots, n_soe, n_actions)``;
        must put zero mass on masked actions.

    Returns
    -------
    numpy.ndarray
        V, shape ``(n_agents, slots, n_soe)``, in $ per MWh of capacity.

    Raises
    ------
    ValueError
        If the policy uses a masked action or is not a distribution.
    """
    b = np.atleast_2d(np.asarray(belief, dtype=float))
    pi = np.asarray(policy, dtype=float)
    n_agents, slots = b.shape
    ns, na = model.n_soe, model.n_actions
    if pi.shape != (n_agents, slots, ns, na):
        raise ValueError(f"policy: shape {pi.shape}, expected {(n_agents, slots, ns, na)}")
    if np.any(pi[..., ~model.mask] > 0.0):
        raise ValueError("policy: puts mass on a masked (invalid) action")
    if not np.allclose(pi.sum(axis=-1), 1.0):
        raise ValueError("policy: action probabilities must sum to 1")
    r_pi = np.einsum("ntsa,nta->nts", pi, rewards(model, b)).reshape(n_agents, -1)
    n_states = slots * ns
    # deterministic moves: (τ, s) --a--> (τ + 1, next_soe[s, a]); scatter P_π densely
    rows = np.arange(n_states).reshape(slots, ns, 1)
    cols = ((np.arange(slots) + 1) % slots)[:, None, None] * ns + model.next_soe[None]
    flat = np.broadcast_to(rows * n_states + cols, (slots, ns, na)).ravel()
    flat = (np.arange(n_agents)[:, None] * n_states * n_states + flat[None]).ravel()
    transition = np.bincount(flat, weights=pi.ravel(), minlength=n_agents * n_states**2)
    transition = transition.reshape(n_agents, n_states, n_states)
    system = np.eye(n_states)[None] - model.discount * transition
    return np.linalg.solve(system, r_pi[..., None])[..., 0].reshape(n_agents, slots, ns)


def deterministic_policy_value(
    model: StorageModel, belief: ArrayLike, actions: ArrayLike
) -> NDArray[np.float64]:
    """Exact value (eq. (13)) of a deterministic periodic policy, without a linear solve.

    Every state has one successor under the policy, so
    ``V(x) = Σ_k γ^k r(succ^k(x))``; pointer doubling (``V ← V + γ^n V∘succ^n``,
    ``succ^n ← succ^n ∘ succ^n``, ``n ← 2n``) sums the series until ``γ^n``
    underflows to zero, i.e. to rounding. Same answer as :func:`policy_value`
    with a one-hot policy, at a fraction of the cost.

    Parameters
    ----------
    model
        The storage MDP.
    belief
        LMP belief ($/MWh), shape ``(n_agents, slots)``.
    actions
        Action index per (agent, slot, SoE), shape ``(n_agents, slots, n_soe)``;
        must be valid.

    Returns
    -------
    numpy.ndarray
        V, shape ``(n_agents, slots, n_soe)``, in $ per MWh of capacity.
    """
    b = np.atleast_2d(np.asarray(belief, dtype=float))
    a = np.asarray(actions, dtype=np.intp)
    n_agents, slots = b.shape
    ns = model.n_soe
    if a.shape != (n_agents, slots, ns):
        raise ValueError(f"actions: shape {a.shape}, expected {(n_agents, slots, ns)}")
    if not np.all(model.mask[np.arange(ns)[None, None, :], a]):
        raise ValueError("actions: a masked (invalid) action is chosen")
    n_states = slots * ns
    reward = np.take_along_axis(rewards(model, b), a, axis=-1)  # r(τ, a(τ, s))
    value = reward.reshape(n_agents, n_states)
    nxt_slot = (np.arange(slots)[None, :, None] + 1) % slots
    successor = (nxt_slot * ns + model.next_soe[np.arange(ns)[None, None, :], a]).reshape(
        n_agents, n_states
    )
    factor = model.discount
    while factor > 0.0:
        value = value + factor * np.take_along_axis(value, successor, axis=1)
        successor = np.take_along_axis(successor, successor, axis=1)
        factor = factor * factor
    return value.reshape(n_agents, slots, ns)


def _ro(a: NDArray) -> NDArray:
    a.setflags(write=False)
    return a
