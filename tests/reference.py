"""A literal, loop-by-loop float64 NumPy implementation of DIML Algorithm 1 / eq. (5).

Deliberately slow and written straight from the paper, with no vectorisation and no shared
code with the package, so that the fast path can be checked against it:

- ``u_i(k, a_-i(t)) = M(a(t) with a_i := k)_i`` for every own action ``k < K_i``,
- ``Q_i <- (1 - alpha_i) Q_i + alpha_i u_i(., a_-i(t))``, ``Q_i = q0_i`` at each episode start,
- ``pi_i = (1 - eps_i) softmax(beta_i Q_i) + eps_i / K_i``,
- ``log p(tau) = sum_{t=0}^{L-2} sum_i log pi_i(a_i(t+1))`` (the first action is not scored).

Vocabulary: ``M`` episodes, ``T`` steps, ``n`` agents, ``K_i`` actions of agent ``i``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import bayes_diml as bd
from bayes_diml import mechanisms as mm

__all__ = [
    "split_r_hat_bound",
    "numpy_payoff_fn",
    "table_payoff_fn",
    "reference_counterfactuals",
    "reference_log_likelihood",
    "reference_log_likelihood_per_step",
    "reference_family_log_likelihood_per_step",
    "random_trajectories",
    "plan_kinds",
    "to_float64",
    "MECHANISM_BUILDERS",
]

PayoffFn = Callable[[np.ndarray], np.ndarray]


def numpy_payoff_fn(mechanism: Any, params: Any, *, cache: bool = True) -> PayoffFn:
    """``joint: int[n] -> float64[n]`` by calling ``mechanism.payoffs`` on one joint action.

    The one-joint call is jit-compiled once (so that thousands of calls stay cheap); with
    ``cache=True`` the payoff vector of each distinct joint action is computed once (the loop
    still asks for every counterfactual joint action it needs). Call it, and the returned
    function, in the precision the comparison needs (inside ``jax.enable_x64(True)``).
    """
    one_joint = jax.jit(lambda joint: mechanism.payoffs(params, joint))
    memo: dict[tuple[int, ...], np.ndarray] = {}

    def payoff(joint: np.ndarray) -> np.ndarray:
        key = tuple(int(a) for a in joint)
        if cache and key in memo:
            return memo[key]
        out = np.asarray(one_joint(jnp.asarray(key, dtype=jnp.int32)), dtype=np.float64)
        if cache:
            memo[key] = out
        return out

    return payoff


def table_payoff_fn(table: np.ndarray) -> PayoffFn:
    """``joint: int[n] -> float64[n]`` read from a payoff table ``float[K_1, ..., K_n, n]``."""
    table = np.asarray(table, dtype=np.float64)

    def payoff(joint: np.ndarray) -> np.ndarray:
        return table[tuple(int(a) for a in joint)]

    return payoff


def _per_agent(name: str, x: Any, n: int) -> list[float]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return [float(arr)] * n
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},); got {arr.shape}")
    return [float(v) for v in arr]


def _initial_q(q0: Any, n_actions: Sequence[int]) -> list[np.ndarray]:
    """Per-agent initial scores: a list of float64[K_i]."""
    q0 = np.asarray(q0, dtype=np.float64)
    out = []
    for i, k_i in enumerate(n_actions):
        if q0.ndim == 0:
            out.append(np.full(k_i, float(q0)))
        elif q0.ndim == 1:
            out.append(np.full(k_i, float(q0[i])))
        else:
            out.append(np.array(q0[i, :k_i], dtype=np.float64))
    return out


def _bias_rows(bias: Any, n_actions: Sequence[int]) -> list[np.ndarray]:
    """Per-agent action bias: a list of float64[K_i] (a number: the same for every action)."""
    b = np.asarray(bias, dtype=np.float64)
    if b.ndim == 0:
        return [np.full(k_i, float(b)) for k_i in n_actions]
    return [np.array(b[i, :k_i]) for i, k_i in enumerate(n_actions)]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - np.max(x)
    e = np.exp(z)
    return e / np.sum(e)


def reference_counterfactuals(
    payoff_fn: PayoffFn, actions: np.ndarray, n_actions: Sequence[int]
) -> np.ndarray:
    """``u_i(k, a_-i(t))`` for every ``t = 0..T-2``: float64[M, T-1, n, K_max], 0 for ``k >= K_i``."""
    actions = np.asarray(actions)
    M, T, n = actions.shape
    out = np.zeros((M, T - 1, n, max(n_actions)))
    for m in range(M):
        for t in range(T - 1):
            for i in range(n):
                for k in range(n_actions[i]):
                    joint = [int(a) for a in actions[m, t]]
                    joint[i] = k
                    out[m, t, i, k] = payoff_fn(np.array(joint))[i]
    return out


def reference_log_likelihood_per_step(
    payoff_fn: PayoffFn,
    actions: np.ndarray,
    n_actions: Sequence[int],
    alpha: Any,
    beta: Any,
    eps: Any,
    *,
    lengths: Sequence[int] | None = None,
    q0: Any = 0.0,
    bias: Any = 0.0,
) -> np.ndarray:
    """``log pi_i(t+1)(a_i(t+1))`` for ``t = 0..T-2``: float64[M, T-1, n], 0 on padded steps.

    Parameters
    ----------
    payoff_fn : callable
        ``joint: int[n] -> float[n]``, the mechanism's payoffs of one joint action.
    actions : int[M, T, n]
    n_actions : sequence of int, length n
    alpha, beta, eps : float or float[n]
        Logit-Q learner parameters (shared or per agent).
    lengths : int[M], optional
        Valid steps of each episode (default all ``T``).
    q0 : float, float[n] or float[n, K_max]
        Initial Q at each episode's start.
    bias : float or float[n, K_max]
        Action bias added to the logits: ``pi_i = (1 - eps) softmax(beta Q_i + b_i) + eps / K_i``.
    """
    actions = np.asarray(actions)
    M, T, n = actions.shape
    n_actions = [int(k) for k in n_actions]
    lengths = [T] * M if lengths is None else [int(v) for v in lengths]
    alpha_, beta_, eps_ = (_per_agent(nm, v, n) for nm, v in (("alpha", alpha), ("beta", beta), ("eps", eps)))
    b = _bias_rows(bias, n_actions)
    out = np.zeros((M, T - 1, n))
    for m in range(M):
        q = _initial_q(q0, n_actions)  # Q restarts at q0 in every episode
        for t in range(lengths[m] - 1):
            joint_t = [int(a) for a in actions[m, t]]
            for i in range(n):
                u = np.zeros(n_actions[i])
                for k in range(n_actions[i]):
                    joint = list(joint_t)
                    joint[i] = k  # a_i := k, the others' realised actions a_-i(t)
                    u[k] = payoff_fn(np.array(joint))[i]
                q[i] = (1.0 - alpha_[i]) * q[i] + alpha_[i] * u
                pi = (1.0 - eps_[i]) * _softmax(beta_[i] * q[i] + b[i]) + eps_[i] / n_actions[i]
                out[m, t, i] = np.log(pi[int(actions[m, t + 1, i])])
    return out


def reference_log_likelihood(
    payoff_fn: PayoffFn,
    actions: np.ndarray,
    n_actions: Sequence[int],
    alpha: Any,
    beta: Any,
    eps: Any,
    *,
    lengths: Sequence[int] | None = None,
    q0: Any = 0.0,
) -> float:
    """The total log-likelihood (eq. 5) summed over episodes: a Python float.

    Same arguments as :func:`reference_log_likelihood_per_step`; an independent loop that
    accumulates a scalar rather than summing the per-step array.
    """
    actions = np.asarray(actions)
    M, T, n = actions.shape
    n_actions = [int(k) for k in n_actions]
    lengths = [T] * M if lengths is None else [int(v) for v in lengths]
    alpha_, beta_, eps_ = (_per_agent(nm, v, n) for nm, v in (("alpha", alpha), ("beta", beta), ("eps", eps)))
    total = 0.0
    for m in range(M):
        q = _initial_q(q0, n_actions)
        for t in range(lengths[m] - 1):
            for i in range(n):
                u = np.zeros(n_actions[i])
                for k in range(n_actions[i]):
                    joint = np.array(actions[m, t], dtype=np.int64)
                    joint[i] = k
                    u[k] = payoff_fn(joint)[i]
                q[i] = (1.0 - alpha_[i]) * q[i] + alpha_[i] * u
                pi = (1.0 - eps_[i]) * _softmax(beta_[i] * q[i]) + eps_[i] / n_actions[i]
                total += float(np.log(pi[int(actions[m, t + 1, i])]))
    return total


def reference_log_likelihood_by_context(
    payoff_at: Callable[[np.ndarray], PayoffFn],
    data: Any,
    n_actions: Sequence[int],
    alpha: Any,
    beta: Any,
    eps: Any,
) -> float:
    """:func:`reference_log_likelihood` of each episode with the payoffs ``payoff_at(x_m)``, summed.

    ``data``: Trajectories with ``covariates: float[M, C]``; ``x_m`` is episode m's row.
    """
    total = 0.0
    for m in range(data.n_episodes):
        total += reference_log_likelihood(
            payoff_at(data.covariates[m]),
            data.actions[m : m + 1],
            n_actions,
            alpha,
            beta,
            eps,
            lengths=data.lengths[m : m + 1],
        )
    return total


def reference_family_log_likelihood_per_step(
    payoff_fn: PayoffFn,
    actions: np.ndarray,
    n_actions: Sequence[int],
    family: str,
    params: dict[str, Any],
    *,
    lengths: Sequence[int] | None = None,
    q0: Any = 0.0,
    bias: Any = 0.0,
) -> np.ndarray:
    """Per-step log-likelihood float64[M, T-1, n] of the other learner families, literally.

    ``family`` and ``params`` (scalars or float[n] per agent):

    - ``"bandit"`` (alpha, beta, eps): ``Q_i[a_i(t)] <- (1 - alpha) Q_i[a_i(t)] + alpha u_i(a(t))``,
      other actions unchanged; ``pi = (1 - eps) softmax(beta Q) + eps / K_i``.
    - ``"hedge"`` (eta, eps): ``pi(t+1) = (1 - eps) softmax(eta (q0 + sum_{s<=t} u(s))) + eps / K_i``.
    - ``"fp"`` (beta, eps, prior_weight w): ``V(t) = (w q0 + sum_{s<=t} u(s)) / (w + t)`` for t >= 1
      (t counts the steps seen), ``pi = (1 - eps) softmax(beta V) + eps / K_i``.
    - ``"ewa"`` (phi, delta, rho, lam, eps, n0): ``N <- rho N + 1``,
      ``A_j <- (phi N_old A_j + (delta + (1 - delta) [j == a_i(t)]) u_j) / N``,
      ``pi = (1 - eps) softmax(lam A) + eps / K_i``; ``N = n0``, ``A = q0`` at each episode start.

    ``bias`` (a number or float[n, K_max]) is added to every family's logits.
    """
    actions = np.asarray(actions)
    M, T, n = actions.shape
    n_actions = [int(k) for k in n_actions]
    lengths = [T] * M if lengths is None else [int(v) for v in lengths]
    p = {name: _per_agent(name, v, n) for name, v in params.items()}
    b = _bias_rows(bias, n_actions)
    out = np.zeros((M, T - 1, n))
    for m in range(M):
        q_init = _initial_q(q0, n_actions)
        scores = [q.copy() for q in q_init]  # bandit Q, EWA attractions
        sums = [np.zeros(k) for k in n_actions]  # hedge / fp: sum of counterfactual payoffs so far
        experience = [p["n0"][i] if family == "ewa" else 0.0 for i in range(n)]
        for t in range(lengths[m] - 1):
            for i in range(n):
                u = np.zeros(n_actions[i])
                for k in range(n_actions[i]):
                    joint = [int(a) for a in actions[m, t]]
                    joint[i] = k
                    u[k] = payoff_fn(np.array(joint))[i]
                a_i = int(actions[m, t, i])
                if family == "bandit":
                    scores[i][a_i] = (1.0 - p["alpha"][i]) * scores[i][a_i] + p["alpha"][i] * u[a_i]
                    logits = p["beta"][i] * scores[i]
                elif family == "hedge":
                    sums[i] = sums[i] + u
                    logits = p["eta"][i] * (q_init[i] + sums[i])
                elif family == "fp":
                    sums[i] = sums[i] + u
                    w = p["prior_weight"][i]
                    logits = p["beta"][i] * (w * q_init[i] + sums[i]) / (w + (t + 1))
                elif family == "ewa":
                    n_old = experience[i]
                    experience[i] = p["rho"][i] * n_old + 1.0
                    new = np.zeros(n_actions[i])
                    for j in range(n_actions[i]):
                        weight = p["delta"][i] + (1.0 - p["delta"][i]) * (1.0 if j == a_i else 0.0)
                        new[j] = (p["phi"][i] * n_old * scores[i][j] + weight * u[j]) / experience[i]
                    scores[i] = new
                    logits = p["lam"][i] * scores[i]
                else:
                    raise ValueError(f"unknown family {family!r}")
                eps = p["eps"][i]
                pi = (1.0 - eps) * _softmax(logits + b[i]) + eps / n_actions[i]
                out[m, t, i] = np.log(pi[int(actions[m, t + 1, i])])
    return out


# ---------------------------------------------------------------- helpers shared by the tests
# (not part of the reference algorithm)


def random_trajectories(
    n_actions: tuple[int, ...], n_episodes: int, n_steps: int, seed: int, lengths=None
) -> bd.Trajectories:
    """Uniformly random actions int[M, T, n] (any action sequence has positive likelihood)."""
    rng = np.random.default_rng(seed)
    actions = np.stack([rng.integers(0, k, size=(n_episodes, n_steps)) for k in n_actions], axis=-1)
    return bd.Trajectories(actions, n_actions, lengths=lengths)


def plan_kinds(mechanism: Any) -> list[str]:
    """The counterfactual plan kinds that apply to ``mechanism``."""
    kinds = ["table", "joint"]
    if callable(getattr(mechanism, "count_payoffs", None)):
        kinds.append("count")
    return kinds


def to_float64(tree: Any) -> Any:
    """Cast every float leaf of a pytree to float64 (call inside an x64 context)."""
    return jax.tree_util.tree_map(
        lambda x: (
            jnp.asarray(np.asarray(x, dtype=np.float64)) if jnp.issubdtype(x.dtype, jnp.floating) else x
        ),
        tree,
    )


# ---------------------------------------------------------------- small test games, one per mechanism type
# Each builder takes a key and returns (mechanism, params), built in the current precision
# (call it inside the ``x64`` fixture for float64 params).


def _features(joint: jax.Array) -> jax.Array:
    """int[3] -> float[3, 4]: own action, its square, own x others' sum, match with next agent."""
    a = joint.astype(jnp.result_type(float))
    others = a.sum() - a
    match = (joint == jnp.roll(joint, -1)).astype(a.dtype)
    return jnp.stack([a, a**2 / 4.0, a * others / 4.0, match], axis=-1)


def _function_payoffs(params: dict, joint: jax.Array) -> jax.Array:
    """int[n] -> float[n]: a nonlinear own-action value modulated by the others' actions."""
    n = joint.shape[0]
    own = jnp.asarray(params["w"])[jnp.arange(n), joint]
    others = joint.sum() - joint
    return own * jnp.tanh(1.0 + params["v"] * others) + params["c"] * (joint == joint[0])


def _function_init(key: jax.Array) -> dict:
    """Params of ``_function_payoffs`` for 6 agents with up to 5 actions."""
    kw, kv, kc = jax.random.split(key, 3)
    return {
        "w": jax.random.normal(kw, (6, 5)),
        "v": 0.5 * jax.random.normal(kv, (6,)),
        "c": jax.random.normal(kc, ()),
    }


def _build_tabular(key):
    mech = mm.Tabular((2, 3, 4))
    return mech, mech.init(key)


def _build_tabular_k1(key):
    mech = mm.Tabular((1, 3, 2))
    return mech, mech.init(key)


def _build_neural_joint(key):
    mech = mm.NeuralJoint((2, 3, 4), width=8)
    return mech, mech.init(key)


def _build_congestion(key):
    mech = mm.Congestion(3, 4)
    params = mech.init(key)
    # scale up so that the payoff differences matter to the learner
    return mech, jax.tree_util.tree_map(lambda x: 5.0 * x, params)


def _build_structured_congestion(key):
    mech = mm.StructuredCongestion(3, 4, init_scale=1.0)
    return mech, mech.init(key)


def _build_public_goods(key):
    mech = mm.PublicGoods(3, 4, width=8)
    return mech, mech.init(key)


def _build_structured_public_goods(key):
    mech = mm.StructuredPublicGoods(3, 4, width=8)
    params = mech.init(key)
    params.update(scale=jnp.asarray(1.3), rate=jnp.asarray(1.7), cost=jnp.asarray(0.6))
    return mech, params


def _build_symmetric_count(key):
    # 5^6 = 15625 profiles > DEFAULT_TABLE_LIMIT: the likelihood's default plan is "count"
    mech = mm.SymmetricCount(6, 5, width=8)
    return mech, mech.init(key)


def _build_linear_callable(key):
    mech = mm.Linear(_features, n_actions=(2, 3, 4))
    return mech, mech.init(key)


def _build_linear_table(key):
    table = np.random.default_rng(5).normal(size=(2, 3, 4, 3, 3))
    mech = mm.Linear(table)
    return mech, mech.init(key)


def _build_function(key):
    # 160000 profiles > DEFAULT_TABLE_LIMIT and no count_payoffs: the default plan is "joint"
    mech = mm.Function(_function_payoffs, _function_init, n_actions=(4, 5, 4, 5, 4, 5))
    return mech, mech.init(key)


MECHANISM_BUILDERS: dict[str, Callable[[jax.Array], tuple[Any, Any]]] = {
    "tabular": _build_tabular,
    "tabular_k1": _build_tabular_k1,
    "neural_joint": _build_neural_joint,
    "congestion": _build_congestion,
    "structured_congestion": _build_structured_congestion,
    "public_goods": _build_public_goods,
    "structured_public_goods": _build_structured_public_goods,
    "symmetric_count": _build_symmetric_count,
    "linear_callable": _build_linear_callable,
    "linear_table": _build_linear_table,
    "function": _build_function,
}


def split_r_hat_bound(ess: float, chains: int, quantities: int, p: float = 1e-3) -> float:
    """Upper (1 - p) quantile of the largest split R-hat of mixed chains, ``quantities`` of them.

    Split into ``m = 2 chains`` halves of ``n = ess / m`` effective draws, R-hat^2 is about
    ``1 + (F - 1) / n`` with ``F ~ chi2(m - 1) / (m - 1)`` (between- over within-chain
    variance); the chi-square quantile by Wilson-Hilferty, Bonferroni over the quantities.
    With 2 chains and ESS 400 this is 1.03: 1.01 is the advice for 4 chains and ESS > 400.
    ArviZ's R-hat is the larger of the bulk and the folded (|x - median|) one: count both kinds
    in ``quantities`` and pass the smaller of the bulk and tail ESS.
    """
    from statistics import NormalDist

    m, df = 2 * chains, 2 * chains - 1
    z = NormalDist().inv_cdf(1 - p / quantities)
    chi2 = df * (1 - 2 / (9 * df) + z * (2 / (9 * df)) ** 0.5) ** 3
    return (1 + (chi2 / df - 1) / (ess / m)) ** 0.5


# ---------------------------------------------------------------- aspiration, regret matching, Markov Q


def reference_new_family_log_likelihood_per_step(
    payoff_fn: PayoffFn,
    actions: np.ndarray,
    n_actions: Sequence[int],
    family: str,
    params: dict[str, Any],
    *,
    lengths: Sequence[int] | None = None,
    q0: Any = 0.0,
    a0: Any = 0.0,
    bias: Any = 0.0,
) -> np.ndarray:
    """Per-step log-likelihood float64[M, T-1, n] of the aspiration, regret and Markov-Q rules, literally.

    ``family`` and ``params`` (scalars or float[n] per agent), with ``r = u_i(a_i(t), a_-i(t))``:

    - ``"aspiration"`` (alpha, beta, eps, h): ``P[a_i(t)] <- P[a_i(t)] + alpha (r - A)``, then
      ``A <- (1 - h) A + h r``; ``pi = (1 - eps) softmax(beta P) + eps / K_i``; ``P = q0``,
      ``A = a0`` at each episode start.
    - ``"regret"`` (alpha, beta, eps): ``R(k) <- (1 - alpha) R(k) + alpha (u(k) - r)``, ``R = q0``
      at the start; ``pi = (1 - eps) softplus(beta R) / sum softplus(beta R) + eps / K_i``.
    - ``"markovq"`` (alpha, beta, eps): a dict of score rows keyed by the opponents' last profile
      (key ``None`` at an episode's start, every row starting at ``q0``); the row of the state
      in which step t was played moves, ``Q[s] <- (1 - alpha) Q[s] + alpha u``; the state becomes
      ``a_-i(t)`` and ``pi = (1 - eps) softmax(beta Q[a_-i(t)]) + eps / K_i``.

    ``bias`` (a number or float[n, K_max]) multiplies the greedy weights by ``e^{b_i}`` before
    they are normalised (for the softmax rules: it is added to the logits).
    """
    actions = np.asarray(actions)
    M, T, n = actions.shape
    n_actions = [int(k) for k in n_actions]
    lengths = [T] * M if lengths is None else [int(v) for v in lengths]
    p = {name: _per_agent(name, v, n) for name, v in params.items()}
    a0_ = _per_agent("a0", a0, n)
    b = _bias_rows(bias, n_actions)
    out = np.zeros((M, T - 1, n))
    for m in range(M):
        q_init = _initial_q(q0, n_actions)
        scores = [q.copy() for q in q_init]  # propensities P / regrets R
        aspiration = list(a0_)
        rows: list[dict] = [{} for _ in range(n)]  # Markov Q: opponents' profile -> scores
        state: list[Any] = [None] * n
        for t in range(lengths[m] - 1):
            for i in range(n):
                u = np.zeros(n_actions[i])
                for k in range(n_actions[i]):
                    joint = [int(a) for a in actions[m, t]]
                    joint[i] = k
                    u[k] = payoff_fn(np.array(joint))[i]
                a_i = int(actions[m, t, i])
                r = u[a_i]
                alpha, beta = p["alpha"][i], p["beta"][i]
                if family == "aspiration":
                    scores[i][a_i] = scores[i][a_i] + alpha * (r - aspiration[i])
                    aspiration[i] = (1.0 - p["h"][i]) * aspiration[i] + p["h"][i] * r
                    greedy = _softmax(beta * scores[i] + b[i])
                elif family == "regret":
                    for k in range(n_actions[i]):
                        scores[i][k] = (1.0 - alpha) * scores[i][k] + alpha * (u[k] - r)
                    weights = np.logaddexp(0.0, beta * scores[i]) * np.exp(b[i])  # softplus, biased
                    greedy = weights / np.sum(weights)
                elif family == "markovq":
                    row = rows[i].get(state[i], q_init[i].copy())
                    rows[i][state[i]] = (1.0 - alpha) * row + alpha * u
                    state[i] = tuple(int(a) for j, a in enumerate(actions[m, t]) if j != i)
                    greedy = _softmax(beta * rows[i].get(state[i], q_init[i]) + b[i])
                else:
                    raise ValueError(f"unknown family {family!r}")
                eps = p["eps"][i]
                pi = (1.0 - eps) * greedy + eps / n_actions[i]
                out[m, t, i] = np.log(pi[int(actions[m, t + 1, i])])
    return out


__all__ += ["reference_new_family_log_likelihood_per_step"]
