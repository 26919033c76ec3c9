"""Neural mechanisms of the DIML experiments: E1 (``NeuralJoint``) and E7 (``SymmetricCount``).

Weights are plain pytrees (dicts and lists of arrays) initialised as PyTorch does
(embeddings ``N(0, 1)``, affine layers ``U(+-1/sqrt(fan_in))``), so a random ``init`` is a
"true" mechanism for the experiments, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from ._util import (
    broadcast_covariates,
    check_n_actions,
    check_positive_int,
    matmul,
    mlp_apply,
    mlp_init,
    optional_covariate_names,
)
from .base import GaugeFreeLeaves

__all__ = ["NeuralJoint", "SymmetricCount"]

#: Rows (count vectors) per block of :meth:`SymmetricCount.count_grid` on the CPU: a block's
#: activations (4 actions x 1024 rows x 256 units, float32: 4 MiB) stay in cache.
GRID_BLOCK_ROWS = 1024
#: Own actions per block of :meth:`SymmetricCount.count_grid` on the CPU (4: 1.4x faster than 1
#: at E7's 300 x 40 on 2 cores; 8 is slower again).
GRID_BLOCK_ACTIONS = 4
#: The capacities (first-layer units kept under a ReLU) of :meth:`SymmetricCount.count_grid`'s
#: branches before the last, which keeps every unit.
GRID_UNSTABLE_CAPS = (16, 64)


@dataclass(frozen=True)
class NeuralJoint(GaugeFreeLeaves):
    """Unstructured neural mechanism over joint actions (experiment E1).

    Each agent's action is embedded (``embed_dim = min(24, max(6, K_max))``), the
    embeddings are concatenated and passed through ``depth`` tanh layers of ``width``
    units and an affine map to ``n`` payoffs.

    With ``covariate_names`` (C of them) the network also takes the episode's covariates: its
    input is ``[embed_0(a_0), ..., embed_{n-1}(a_{n-1}), x_1, ..., x_C]``, float[n d + C], and
    ``payoffs(params, joint, covariates=x)`` with ``x: float[..., C]`` evaluates it at ``x``
    (default 0). The covariates are matched by name to the data's ``covariate_names``.

    Params: ``{"embed": [float[K_i, d]] * n, "layers": [{"w", "b"}] * (depth + 1)}`` (the first
    layer's ``w`` float[n d + C, width]).
    """

    n_actions: tuple[int, ...]
    width: int = 128
    depth: int = 2
    embed_dim: int | None = None
    covariate_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))
        object.__setattr__(self, "covariate_names", optional_covariate_names(self.covariate_names))
        object.__setattr__(self, "_gauge_leaves", (f"layers.{self.depth}.b",))
        check_positive_int("width", self.width)
        check_positive_int("depth", self.depth, minimum=0)
        if self.embed_dim is None:
            object.__setattr__(self, "embed_dim", min(24, max(6, max(self.n_actions))))
        check_positive_int("embed_dim", self.embed_dim)

    @property
    def n_agents(self) -> int:
        """Number of agents n."""
        return len(self.n_actions)

    def init(self, key: jax.Array) -> dict:
        """PyTorch-default initialisation (the E1 ground truth when drawn at random)."""
        k_emb, k_mlp = jax.random.split(key)
        emb_keys = jax.random.split(k_emb, self.n_agents)
        embed = [
            jax.random.normal(k, (K, self.embed_dim)) for k, K in zip(emb_keys, self.n_actions, strict=True)
        ]
        n_in = self.n_agents * self.embed_dim + len(self.covariate_names)
        sizes = [n_in] + [self.width] * self.depth + [self.n_agents]
        return {"embed": embed, "layers": mlp_init(k_mlp, sizes)}

    def payoffs(self, params: dict, joint: jax.Array, covariates: Any = None) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n], at ``covariates: float[..., C]``."""
        joint = jnp.asarray(joint)
        parts = [params["embed"][i][joint[..., i]] for i in range(self.n_agents)]
        if self.covariate_names:
            lead, x = broadcast_covariates(covariates, self.covariate_names, joint.shape, parts[0].dtype)
            parts = [*(jnp.broadcast_to(p, (*lead, p.shape[-1])) for p in parts), x]
        elif covariates is not None:
            raise ValueError("this NeuralJoint takes no covariates; build it with covariate_names=(...).")
        return mlp_apply(params["layers"], jnp.concatenate(parts, axis=-1), jnp.tanh)


@dataclass(frozen=True)
class SymmetricCount(GaugeFreeLeaves):
    """Symmetric anonymous game (experiment E7): payoff of the own action given the others' counts.

    ``payoff_i = MLP([embed(a_i), c_{-i} / (n - 1)])`` with ``c_{-i}`` the counts of the
    other agents' actions, ``embed_dim = min(32, max(12, K))`` and ``depth`` ReLU layers
    of ``width`` units.

    With ``covariate_names`` (C of them) the network also takes the episode's covariates: its
    input is ``[embed(a_i), c_{-i} / (n - 1), x_1, ..., x_C]``, float[d + K + C] (the covariates
    after the shares), and ``payoffs(params, joint, covariates=x)`` / ``count_payoffs(...,
    covariates=x)`` with ``x: float[..., C]`` evaluate it at ``x`` (default 0). The covariates are
    matched by name to the data's ``covariate_names``. Its likelihood runs the count plan with a
    context axis (``plan_for``): one row per distinct (opponent counts, covariate row) pair, each
    through ``count_payoffs`` for every own action (``count_grid``'s speed path is for
    covariate-free fits), so the cost grows with the distinct pairs, not with n.

    Params: ``{"embed": float[K, d], "layers": [{"w", "b"}] * (depth + 1)}`` (the first layer's
    ``w`` float[d + K + C, width]).
    """

    n_agents: int
    n_choices: int
    width: int = 256
    depth: int = 2
    embed_dim: int | None = None
    covariate_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_positive_int("n_agents", self.n_agents)
        check_positive_int("n_choices", self.n_choices)
        object.__setattr__(self, "covariate_names", optional_covariate_names(self.covariate_names))
        object.__setattr__(self, "_gauge_leaves", (f"layers.{self.depth}.b",))
        check_positive_int("width", self.width)
        check_positive_int("depth", self.depth, minimum=0)
        if self.embed_dim is None:
            object.__setattr__(self, "embed_dim", min(32, max(12, self.n_choices)))
        check_positive_int("embed_dim", self.embed_dim)

    @property
    def n_actions(self) -> tuple[int, ...]:
        """(K,) * n."""
        return (self.n_choices,) * self.n_agents

    def init(self, key: jax.Array) -> dict:
        """PyTorch-default initialisation (the E7 ground truth when drawn at random)."""
        k_emb, k_mlp = jax.random.split(key)
        n_in = self.embed_dim + self.n_choices + len(self.covariate_names)
        sizes = [n_in] + [self.width] * self.depth + [1]
        return {
            "embed": jax.random.normal(k_emb, (self.n_choices, self.embed_dim)),
            "layers": mlp_init(k_mlp, sizes),
        }

    def count_payoffs(
        self, params: dict, own: jax.Array, opponent_counts: jax.Array, covariates: Any = None
    ) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] (summing to n-1) -> float[...].

        ``covariates: float[..., C]`` (with ``covariate_names``; default 0) broadcast against both.
        """
        own = jnp.asarray(own)
        dtype = params["embed"].dtype
        counts = jnp.asarray(opponent_counts, dtype=dtype)
        shares = counts / max(self.n_agents - 1, 1)
        shape = jnp.broadcast_shapes(own.shape, counts.shape[:-1])
        # the first layer applied to [embed(own), shares] as the sum of its two blocks, each on
        # its own (un-broadcast) input: for the likelihood's [U, 1, K] counts x [1, K] own actions
        # that is U + K rows through it instead of U x K (benchmarks/likelihood.py, E7)
        first, rest = params["layers"][0], params["layers"][1:]
        d = self.embed_dim
        if self.covariate_names:  # a third block, [x_1..x_C] @ w[d + K:], on the un-broadcast x
            _, x = broadcast_covariates(covariates, self.covariate_names, (1,), dtype)  # checks float[..., C]
            shape = jnp.broadcast_shapes(shape, x.shape[:-1])
            w_shares, w_x = first["w"][d : d + self.n_choices], first["w"][d + self.n_choices :]
            h = matmul(params["embed"], first["w"][:d])[own] + matmul(shares, w_shares) + matmul(x, w_x)
            h = h + first["b"]
        elif covariates is not None:
            raise ValueError("this SymmetricCount takes no covariates; build it with covariate_names=(...).")
        else:
            h = matmul(params["embed"], first["w"][:d])[own] + matmul(shares, first["w"][d:]) + first["b"]
        h = jnp.broadcast_to(h, (*shape, h.shape[-1]))
        if not rest:
            return h[..., 0]
        return mlp_apply(rest, jax.nn.relu(h), jax.nn.relu)[..., 0]

    def count_grid(self, params: dict, opponent_counts: jax.Array) -> jax.Array:
        """Payoffs of every own action at each count vector: float[U, K] -> float[U, K].

        Equal to ``count_payoffs(params, arange(K)[None, :], opponent_counts[:, None, :])``
        to float rounding, with about ``(K + F) / width`` of its matrix work (``F``: see below).
        The first layer's pre-activation is ``c_k + z_u`` (own action ``k``: embedding and bias;
        counts ``u``: ``z_u = shares_u W_counts``). A unit whose sign is the same for every
        row ``u`` (checked on the ``z_u`` range of the call, with a margin) is linear or zero
        in ``shares_u``, so the always-active units fold into ``A_k = W_counts diag(active_k)
        W_2``, float[K, width], and each (k, u) pair costs one row of
        ``[shares_u, relu(c_k + z_u)[unstable_k]] @ [A_k; W_2[unstable_k]]``. ``F`` is the
        smallest of ``GRID_UNSTABLE_CAPS`` (16, 64) and ``width`` holding the most unstable
        units of any ``k`` (every unit when ``width``: no assumption is made on the data or the
        weights; that last branch is ~1.4x slower than ``count_payoffs``). On the CPU the pairs
        run ``GRID_BLOCK_ACTIONS`` own actions x ``GRID_BLOCK_ROWS`` rows at a time,
        each block checkpointed (its activations stay in cache and are recomputed in reverse
        mode); elsewhere all pairs at once. Under ``vmap`` over ``params`` every
        ``F`` branch runs. At E7's 300 x 40 (``F = 16``) a likelihood value+grad is 2.1-2.7x faster.
        With ``covariate_names`` it is ``count_payoffs`` at covariates 0 (no speed path).
        """
        dtype = params["embed"].dtype
        counts = jnp.asarray(opponent_counts, dtype=dtype)
        K = self.n_choices
        if counts.ndim != 2 or counts.shape[-1] != K:
            raise ValueError(f"opponent_counts must be float[U, {K}]; got shape {counts.shape}.")
        if self.depth == 0 or counts.shape[0] == 0 or self.covariate_names:
            return self.count_payoffs(params, jnp.arange(K)[None, :], counts[:, None, :])
        shares = counts / max(self.n_agents - 1, 1)
        first, second, rest = params["layers"][0], params["layers"][1], params["layers"][2:]
        d = self.embed_dim
        w_counts, b1 = first["w"][d:], first["b"]
        own = matmul(params["embed"], first["w"][:d])  # [K, W]
        z = matmul(shares, w_counts)  # [U, W]
        # each unit's sign over the call's rows, with a margin for float rounding
        c, zs = jax.lax.stop_gradient(own + b1), jax.lax.stop_gradient(z)
        margin = 1e-5 * (jnp.abs(c) + jnp.abs(zs).max(0))
        active, inactive = c + zs.min(0) > margin, c + zs.max(0) < -margin  # [K, W]
        unstable = ~(active | inactive)
        order = jnp.argsort(~unstable, axis=-1, stable=True)  # unstable units first
        w2, b2 = second["w"], second["b"]
        act = active.astype(dtype)
        folded = matmul(w_counts[None] * act[:, None, :], w2)  # [K, K, V]: A_k
        base = matmul((own + b1) * act, w2) + b2  # [K, V]
        width, n_rows = b1.shape[0], counts.shape[0]
        cpu = jax.default_backend() == "cpu"
        # on the CPU: GRID_BLOCK_ACTIONS own actions and GRID_BLOCK_ROWS rows at a time (rows padded with
        # zero shares to whole blocks; their payoffs are dropped)
        rows = min(n_rows, GRID_BLOCK_ROWS) if cpu else n_rows
        n_blocks = -(-n_rows // rows)
        blocks = jnp.pad(shares, ((0, n_blocks * rows - n_rows), (0, 0))).reshape(n_blocks, rows, K)

        def branch(f: int):
            def run(operands):
                own, w_counts, folded, base, w2, b1, rest = operands
                idx = order[:, :f]  # [K, F]
                valid = jnp.take_along_axis(unstable, idx, -1).astype(dtype)
                weights = jnp.concatenate([folded, w2[idx] * valid[..., None]], 1)  # [K, K + F, V]
                w_unstable = jnp.swapaxes(w_counts[:, idx], 0, 1)  # [K, K, F]
                c_unstable = jnp.take_along_axis(own + b1, idx, -1)  # [K, F]

                def one_action(x):
                    w_k, c_k, weights_k, base_k = x

                    def one_block(shares_b):
                        h1 = jax.nn.relu(matmul(shares_b, w_k) + c_k)  # [B, F]
                        h2 = matmul(jnp.concatenate([shares_b, h1], -1), weights_k) + base_k  # [B, V]
                        out = h2 if not rest else mlp_apply(rest, jax.nn.relu(h2), jax.nn.relu)
                        return out[:, 0]

                    return jax.lax.map(jax.checkpoint(one_block), blocks).reshape(-1)[:n_rows]

                xs = (w_unstable, c_unstable, weights, base)
                return jax.lax.map(one_action, xs, batch_size=min(GRID_BLOCK_ACTIONS, K) if cpu else K).T

            return run

        caps = [f for f in GRID_UNSTABLE_CAPS if f < width] + [width]
        which = jnp.searchsorted(jnp.asarray(caps), unstable.sum(-1).max())
        operands = (own, w_counts, folded, base, w2, b1, rest)
        return jax.lax.switch(which, [branch(f) for f in caps], operands)

    def payoffs(self, params: dict, joint: jax.Array, covariates: Any = None) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n], at ``covariates: float[..., C]``."""
        joint = jnp.asarray(joint)
        own_onehot = jax.nn.one_hot(joint, self.n_choices, dtype=params["embed"].dtype)
        others = own_onehot.sum(-2, keepdims=True) - own_onehot  # float[..., n, K]
        if self.covariate_names:
            _, x = broadcast_covariates(covariates, self.covariate_names, joint.shape, params["embed"].dtype)
            return self.count_payoffs(params, joint, others, covariates=x[..., None, :])  # x for every agent
        return self.count_payoffs(params, joint, others, covariates)
