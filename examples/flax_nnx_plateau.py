"""The article's Flax NNX training loop, with its optimizer swapped for a `.opt` pipeline.

The one changed line is marked: `optax.chain(optax.adam(1e-3), optax.contrib.reduce_on_plateau(
patience=10, cooldown=1, factor=0.5, rtol=1e-5))` became `optc.optax.transform(...)`. (Flax 0.11
and later spell the optimizer `nnx.Optimizer(model, tx, wrt=nnx.Param)` and its update
`optimizer.update(model, grads, ...)`.)

    python examples/flax_nnx_plateau.py [STEPS]
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

import optc

PIPELINE = Path(__file__).with_name("plateau.opt")


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(2, 64, rngs=rngs)
        self.out = nnx.Linear(64, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))


def data(key, n=1000):
    """The article's regression: 2 inputs in [-1, 1], 3 smooth targets plus a little noise."""
    kx, kn = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 2), minval=-1.0, maxval=1.0)
    a, b = x[:, 0], x[:, 1]
    y = jnp.stack([jnp.sin(jnp.pi * a), a * b, jnp.tanh(a - b) + 0.5 * b * b], axis=1)
    return x, y + 0.05 * jax.random.normal(kn, y.shape)


@nnx.jit
def train_step(model, optimizer, x, y):
    def loss_fn(model):
        return ((model(x) - y) ** 2).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads, value=loss)
    return loss


def main(steps: int = 3000):
    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optc.optax.transform(PIPELINE), wrt=nnx.Param)  # the changed line
    x, y = data(jax.random.key(0))
    for step in range(1, steps + 1):
        loss = train_step(model, optimizer, x, y)
        if step % 500 == 0 or step == steps:
            scale = optimizer.opt_state.slots["reduce_on_plateau.scale"]
            print(f"step {step}: loss {float(loss):.6f}, plateau scale {float(scale)}")
    return float(loss)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
