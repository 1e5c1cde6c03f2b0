"""`optc.torch.Optimizer` against PyTorch's own optimizers, with parameter groups, the loss as
`value`, state through `torch.save`/`torch.load`, and PyTorch's misuses."""

import copy
import io
import math

import numpy as np
import pytest
import torch

import optc
import optc.torch
from conftest import EXAMPLES

torch.set_num_threads(1)


def net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def batch(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, torch.sin(x[:, :3]) + 0.1 * x[:, 3:].expand(-1, 3)


def train(model, opt, steps, value=False, closure=False):
    x, y = batch()
    losses = []
    for _ in range(steps):
        if closure:
            def loss_fn():
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                return loss
            losses.append(opt.step(loss_fn).item())
            continue
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step(value=loss) if value else opt.step()
        losses.append(loss.item())
    return losses


def max_difference(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


# Over 200 steps the two differ only by float32 rounding in a different order of operations
# (PyTorch divides by sqrt(v)/sqrt(bias correction) + eps, Optax by sqrt(v / bias correction)
# + eps): measured differences stay below 1e-5 on these O(1) weights; 1e-4 leaves room.
TOLERANCE = 1e-4


@pytest.mark.parametrize(
    "pipeline,reference",
    [
        ("adam(learning_rate=1e-2)", lambda p: torch.optim.Adam(p, lr=1e-2)),
        ("adamw(learning_rate=1e-2, weight_decay=0.1)", lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
    ],
)
def test_it_trains_as_pytorchs_adam_and_adamw_do(pipeline, reference):
    mine, theirs = net(), net()
    ours = optc.torch.Optimizer(mine.named_parameters(), pipeline)
    a = train(mine, ours, 200)
    b = train(theirs, reference(theirs.parameters()), 200)
    assert a[-1] < 0.5 * a[0], "it trains"
    assert max_difference(mine, theirs) < TOLERANCE
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_parameter_groups_come_from_the_names():
    mine, theirs = net(), net()
    pipeline = 'partition { "*.bias" => sgd(learning_rate=0.1), _ => adam(learning_rate=1e-2) }'
    ours = optc.torch.Optimizer(mine.named_parameters(), pipeline)
    assert [g["label"] for g in ours.param_groups] == ["*.bias", "_"]
    assert ours.param_groups[0]["param_names"] == ["0.bias", "2.bias"]
    biases = [p for n, p in theirs.named_parameters() if n.endswith("bias")]
    weights = [p for n, p in theirs.named_parameters() if not n.endswith("bias")]
    sgd, adam = torch.optim.SGD(biases, lr=0.1), torch.optim.Adam(weights, lr=1e-2)

    class Both:
        def zero_grad(self):
            sgd.zero_grad()
            adam.zero_grad()

        def step(self):
            sgd.step()
            adam.step()

    train(mine, ours, 100)
    train(theirs, Both(), 100)
    assert max_difference(mine, theirs) < TOLERANCE
    # Each group shows its own learning rate, with its sign (an update against the gradient).
    assert [g["lr"] for g in ours.param_groups] == pytest.approx([0.1, 1e-2])


def test_the_loss_as_value_drives_reduce_on_plateau():
    model = net()
    opt = optc.torch.Optimizer(model.named_parameters(), EXAMPLES / "plateau.opt")
    assert math.isnan(opt.param_groups[0]["lr"]), "unknown before the first step"
    x, y = batch()
    for _ in range(40):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step(value=1.0)  # a loss that never improves
    assert opt.hyperparams["reduce_on_plateau.scale"] < 1.0
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * opt.hyperparams["reduce_on_plateau.scale"])
    with pytest.raises(TypeError, match="value=loss"):
        opt.step()


def test_a_closure_gives_the_loss_and_the_value():
    model = net()
    opt = optc.torch.Optimizer(model.named_parameters(), EXAMPLES / "plateau.opt")
    losses = train(model, opt, 30, closure=True)
    assert losses[-1] < losses[0]
    assert opt.optimizer.steps == 30


def test_state_survives_torch_save_and_continues_bit_for_bit():
    pipeline = optc.compile(EXAMPLES / "plateau.opt")
    straight = net()
    opt = optc.torch.Optimizer(straight.named_parameters(), pipeline)
    train(straight, opt, 20, value=True)

    resumed = net()
    first = optc.torch.Optimizer(resumed.named_parameters(), pipeline)
    train(resumed, first, 8, value=True)
    buffer = io.BytesIO()
    torch.save({"model": resumed.state_dict(), "optimizer": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)  # weights_only, PyTorch's default: tensors and plain values only
    again = net(seed=3)
    again.load_state_dict(saved["model"])
    second = optc.torch.Optimizer(again.named_parameters(), pipeline)
    second.load_state_dict(saved["optimizer"])
    assert second.optimizer.steps == 8
    assert saved["optimizer"]["state"][0]["adam.scale_by_adam.mu"].shape == (16,)
    train(again, second, 12, value=True)
    for p, q in zip(straight.parameters(), again.parameters()):
        assert torch.equal(p, q)


def test_another_pipelines_state_is_refused():
    a, b = net(), net()
    adam = optc.torch.Optimizer(a.named_parameters(), "adam(learning_rate=1e-3)")
    train(a, adam, 2)
    adamw = optc.torch.Optimizer(b.named_parameters(), "adamw(learning_rate=1e-3)")
    with pytest.raises(ValueError, match="another pipeline"):
        adamw.load_state_dict(adam.state_dict())
    small = torch.nn.Linear(2, 2)
    other = optc.torch.Optimizer(small.named_parameters(), "adam(learning_rate=1e-3)")
    with pytest.raises(ValueError, match="other parameters"):
        other.load_state_dict(adam.state_dict())


def test_a_parameter_without_a_gradient_is_left_alone_as_pytorch_does():
    model = net()
    opt = optc.torch.Optimizer(model.named_parameters(), "adam(learning_rate=1e-2)")
    train(model, opt, 3)
    frozen = model[2].bias.detach().clone()
    mu = opt.optimizer.state_dict()["state"]["scale_by_adam.mu"]["2.bias"].copy()
    x, y = batch()
    opt.zero_grad()
    ((model(x) - y) ** 2).mean().backward()
    model[2].bias.grad = None
    opt.step()
    assert torch.equal(model[2].bias, frozen)
    assert np.array_equal(opt.optimizer.state_dict()["state"]["scale_by_adam.mu"]["2.bias"], mu)
    # No gradient at all: no step (the counters do not move either).
    opt.zero_grad()
    steps = opt.optimizer.steps
    opt.step()
    assert opt.optimizer.steps == steps


def test_misuses_get_clear_errors():
    model = net()
    with pytest.raises(TypeError, match="named_parameters"):
        optc.torch.Optimizer(model.parameters(), "adam(learning_rate=1e-3)")
    with pytest.raises(TypeError, match="float64"):
        optc.torch.Optimizer(net().double().named_parameters(), "adam(learning_rate=1e-3)")
    meta = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(TypeError, match="CPU"):
        optc.torch.Optimizer(meta.named_parameters(), "adam(learning_rate=1e-3)")
    with pytest.raises(optc.CompileError, match="unknown-keyword"):
        optc.torch.Optimizer(model.named_parameters(), "adam(lr=1e-3)")
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    opt = optc.torch.Optimizer(embedding.named_parameters(), "sgd(learning_rate=0.1)")
    embedding(torch.tensor([1, 2])).sum().backward()
    before = embedding.weight.detach().clone()
    with pytest.raises(TypeError, match="sparse"):
        opt.step()
    assert torch.equal(embedding.weight, before)
    opt = optc.torch.Optimizer(model.named_parameters(), "adam(learning_rate=1e-3)")
    train(model, opt, 1)
    opt.param_groups[0]["lr"] = 0.5  # as a torch LR scheduler would
    with pytest.raises(ValueError, match="schedule in the .opt file"):
        opt.step()


def test_step_hooks_fire_and_a_profiler_sees_the_step():
    model = net()
    opt = optc.torch.Optimizer(model.named_parameters(), "sgd(learning_rate=0.1)")
    seen = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append("post"))
    train(model, opt, 2)
    assert seen == ["pre", "post", "pre", "post"]
    with torch.profiler.profile() as prof:
        train(model, opt, 1)
    assert any("Optimizer.step#Optimizer.step" in e.name for e in prof.events())


def test_the_shipped_example_runs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_plateau", EXAMPLES / "torch_plateau.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(50) < 1.0


def test_a_parameter_group_keeps_state_for_its_own_parameters_only():
    model = net()
    pipeline = 'partition { "*.bias" => sgd(learning_rate=0.1, momentum=0.9), _ => adam(learning_rate=1e-2) }'
    opt = optc.torch.Optimizer(model.named_parameters(), pipeline)
    train(model, opt, 2)
    sd = opt.state_dict()
    names = [n for g in sd["param_groups"] for n in g["param_names"]]
    for i, name in enumerate(names):
        kept = set(sd["state"][i])
        assert len(kept) == (1 if name.endswith("bias") else 2), (name, kept)
    again = optc.torch.Optimizer(net().named_parameters(), pipeline)
    again.load_state_dict(sd)
    assert again.optimizer.steps == 2


def test_eval_params_are_pytorchs_ema_and_lookaheads_slow_weights():
    # ema_params is PyTorch's AveragedModel with get_ema_multi_avg_fn, averaging from the
    # initial weights on (one update_parameters before the first step).
    model = net()
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9))
    ema.update_parameters(model)
    opt = optc.torch.Optimizer(model.named_parameters(), "chain(ema_params(decay=0.9), adam(learning_rate=1e-2))")
    x, y = batch()
    for _ in range(20):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        ema.update_parameters(model)
    weights = opt.eval_params()
    for name, p in ema.module.named_parameters():
        torch.testing.assert_close(weights[name], p.detach(), rtol=1e-5, atol=1e-6)
    # Loaded into a copy of the model, they evaluate as the average does.
    evaluated = copy.deepcopy(model)
    evaluated.load_state_dict(weights, strict=False)
    torch.testing.assert_close(evaluated(x), ema.module(x), rtol=1e-4, atol=1e-5)

    # Lookahead: right after a sync the fast weights are the slow ones (up to the float32
    # rounding of the update that moves them there); two steps later not.
    model = net(1)
    opt = optc.torch.Optimizer(model.named_parameters(), "lookahead(sgd(learning_rate=0.05), sync_period=5, slow_step_size=0.5)")
    train(model, opt, 10)
    for name, p in model.named_parameters():
        torch.testing.assert_close(opt.eval_params()[name], p.detach(), rtol=0, atol=1e-6)
    train(model, opt, 2)
    assert max((opt.eval_params()[n] - p.detach()).abs().max().item() for n, p in model.named_parameters()) > 1e-4


def test_muon_orthogonalizes_pytorchs_convolution_kernels_as_optax_does():
    # PyTorch's kernels are (out, in, kh, kw) and its weights (out, in): the output axis first.
    # Optax's `muon` gets the same dimension numbers as a tree and the same gradients, step by
    # step; both compute in float32 (in another order inside the products: measured
    # differences stay below 1e-6 on these O(1) weights).
    optax = pytest.importorskip("optax")
    dims = optax.contrib.MuonDimensionNumbers
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3))
    opt = optc.torch.Optimizer(model.named_parameters(), """muon(learning_rate=0.02, muon_weight_dimension_numbers=[
        (ndim == 4, MuonDimensionNumbers(reduction_axis=[1, 2, 3], output_axis=0)),
        (ndim == 2, MuonDimensionNumbers(reduction_axis=1, output_axis=0))])""")
    tree = {n: dims((1, 2, 3), 0) if p.ndim == 4 else dims(1, 0) if p.ndim == 2 else None for n, p in model.named_parameters()}
    tx = optax.contrib.muon(learning_rate=0.02, muon_weight_dimension_numbers=tree)
    params = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    state = tx.init(params)
    x, y = torch.randn(16, 2, 6, 6), torch.randint(0, 3, (16,))
    for _ in range(4):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
        opt.step()
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        for n, p in model.named_parameters():
            np.testing.assert_allclose(p.detach().numpy(), np.asarray(params[n]), rtol=1e-5, atol=1e-5, err_msg=n)
