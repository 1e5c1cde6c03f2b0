"""The article's model in PyTorch, stepped by a `.opt` pipeline: Adam whose learning rate
halves when the loss stops improving (`examples/plateau.opt`).

The one line that differs from a plain PyTorch loop is marked; `opt.step(value=loss)` passes
the loss, which `reduce_on_plateau` reads.

    python examples/torch_plateau.py [STEPS]
"""

import sys
from pathlib import Path

import torch

import optc

PIPELINE = Path(__file__).with_name("plateau.opt")


def data(n=1000, seed=0):
    """The article's regression: 2 inputs in [-1, 1], 3 smooth targets plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    a, b = x[:, 0], x[:, 1]
    y = torch.stack([torch.sin(torch.pi * a), a * b, torch.tanh(a - b) + 0.5 * b * b], dim=1)
    return x, y + 0.05 * torch.randn(y.shape, generator=g)


def main(steps: int = 3000):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
    opt = optc.torch.Optimizer(model.named_parameters(), PIPELINE)  # the changed line
    x, y = data()
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step(value=loss)
        if step % 500 == 0 or step == steps:
            lr = opt.param_groups[0]["lr"]
            print(f"step {step}: loss {loss.item():.6f}, learning rate {lr:.3e}")
    return loss.item()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
