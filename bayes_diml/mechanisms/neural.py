"""Neural mechanisms of the DIML experiments: E1 (``NeuralJoint``) and E7 (``SymmetricCount``).

Weights are plain pytrees (dicts and lists of arrays) initialised as PyTorch does
(embeddings ``N(0, 1)``, affine layers ``U(+-1/sqrt(fan_in))``), so a random ``init`` is a
"true" mechanism for the experiments, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ._util import check_n_actions, check_positive_int, matmul, mlp_apply, mlp_init
from .base import GaugeFreeLeaves

__all__ = ["NeuralJoint", "SymmetricCount"]


@dataclass(frozen=True)
class NeuralJoint(GaugeFreeLeaves):
    """Unstructured neural mechanism over joint actions (experiment E1).

    Each agent's action is embedded (``embed_dim = min(24, max(6, K_max))``), the
    embeddings are concatenated and passed through ``depth`` tanh layers of ``width``
    units and an affine map to ``n`` payoffs.

    Params: ``{"embed": [float[K_i, d]] * n, "layers": [{"w", "b"}] * (depth + 1)}``.
    """

    n_actions: tuple[int, ...]
    width: int = 128
    depth: int = 2
    embed_dim: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_actions", check_n_actions(self.n_actions))
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
        sizes = [self.n_agents * self.embed_dim] + [self.width] * self.depth + [self.n_agents]
        return {"embed": embed, "layers": mlp_init(k_mlp, sizes)}

    def payoffs(self, params: dict, joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n]."""
        joint = jnp.asarray(joint)
        x = jnp.concatenate([params["embed"][i][joint[..., i]] for i in range(self.n_agents)], axis=-1)
        return mlp_apply(params["layers"], x, jnp.tanh)


@dataclass(frozen=True)
class SymmetricCount(GaugeFreeLeaves):
    """Symmetric anonymous game (experiment E7): payoff of the own action given the others' counts.

    ``payoff_i = MLP([embed(a_i), c_{-i} / (n - 1)])`` with ``c_{-i}`` the counts of the
    other agents' actions, ``embed_dim = min(32, max(12, K))`` and ``depth`` ReLU layers
    of ``width`` units.

    Params: ``{"embed": float[K, d], "layers": [{"w", "b"}] * (depth + 1)}``.
    """

    n_agents: int
    n_choices: int
    width: int = 256
    depth: int = 2
    embed_dim: int | None = None

    def __post_init__(self) -> None:
        check_positive_int("n_agents", self.n_agents)
        check_positive_int("n_choices", self.n_choices)
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
        sizes = [self.embed_dim + self.n_choices] + [self.width] * self.depth + [1]
        return {
            "embed": jax.random.normal(k_emb, (self.n_choices, self.embed_dim)),
            "layers": mlp_init(k_mlp, sizes),
        }

    def count_payoffs(self, params: dict, own: jax.Array, opponent_counts: jax.Array) -> jax.Array:
        """own: int[...], opponent_counts: float[..., K] (summing to n-1) -> float[...]."""
        own = jnp.asarray(own)
        counts = jnp.asarray(opponent_counts, dtype=params["embed"].dtype)
        shares = counts / max(self.n_agents - 1, 1)
        shape = jnp.broadcast_shapes(own.shape, counts.shape[:-1])
        # the first layer applied to [embed(own), shares] as the sum of its two blocks, each on
        # its own (un-broadcast) input: for the likelihood's [U, 1, K] counts x [1, K] own actions
        # that is U + K rows through it instead of U x K (benchmarks/likelihood.py, E7)
        first, rest = params["layers"][0], params["layers"][1:]
        d = self.embed_dim
        h = matmul(params["embed"], first["w"][:d])[own] + matmul(shares, first["w"][d:]) + first["b"]
        h = jnp.broadcast_to(h, (*shape, h.shape[-1]))
        if not rest:
            return h[..., 0]
        return mlp_apply(rest, jax.nn.relu(h), jax.nn.relu)[..., 0]

    def payoffs(self, params: dict, joint: jax.Array) -> jax.Array:
        """Payoffs of joint actions: int[..., n] -> float[..., n]."""
        joint = jnp.asarray(joint)
        own_onehot = jax.nn.one_hot(joint, self.n_choices, dtype=params["embed"].dtype)
        others = own_onehot.sum(-2, keepdims=True) - own_onehot  # float[..., n, K]
        return self.count_payoffs(params, joint, others)
