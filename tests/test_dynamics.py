"""The fused CPU neuron dynamics against slayer's own CPU implementation: equal bit for bit."""

import copy
import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lava.lib.dl import slayer
from lava.lib.dl.slayer.neuron.dynamics import leaky_integrator

from lava_qpsnn.training.dynamics import CHUNK, FusedNeuron, integrate, integrate_and_fire, use_fused_dynamics
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.norm import BatchNorm
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig

neurons = st.fixed_dictionaries(
    {
        "threshold": st.floats(0.05, 4.0),
        "current_decay": st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
        "voltage_decay": st.floats(0.0, 1.0),
        "tau_grad": st.floats(0.001, 1.0),
        "scale_grad": st.floats(0.1, 3.0),
    }
)
shapes = st.tuples(st.integers(1, 3), st.integers(1, 5), st.sampled_from([(), (3, 4)]), st.integers(1, 20))


def _input(shape: tuple, binary: bool, seed: int) -> torch.Tensor:
    n, c, spatial, steps = shape
    generator = torch.Generator().manual_seed(seed)
    size = (n, c, *spatial, steps)
    if binary:
        return (torch.rand(size, generator=generator) < 0.4).float()
    return torch.randn(size, generator=generator) * 3


def _pair(params: dict, norm: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """slayer's neuron and a fused copy with the same parameters."""
    if norm:
        params = {**params, "norm": functools.partial(BatchNorm, 5)}
    reference = slayer.neuron.cuba.Neuron(**params)
    fused = use_fused_dynamics(torch.nn.Sequential(copy.deepcopy(reference)))[0]
    assert type(fused) is FusedNeuron
    return reference, fused


@settings(max_examples=60, deadline=None)
@given(params=neurons, shape=shapes, binary=st.booleans(), norm=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_spikes_and_gradients_equal_slayers(params, shape, binary, norm, seed):
    if norm:
        shape = (shape[0], 5, *shape[2:])
    reference, fused = _pair(params, norm)
    x = _input(shape, binary, seed).requires_grad_()
    x_fused = x.detach().clone().requires_grad_()
    spikes, spikes_fused = reference(x), fused(x_fused)
    assert torch.equal(spikes, spikes_fused)
    grad = torch.randn(spikes.shape, generator=torch.Generator().manual_seed(seed + 1))
    (spikes * grad).sum().backward()
    (spikes_fused * grad).sum().backward()
    assert torch.equal(x.grad, x_fused.grad)
    for (name, p), p_fused in zip(reference.named_parameters(), fused.parameters(), strict=True):
        assert (p.grad is None) == (p_fused.grad is None), name
        assert p.grad is None or torch.equal(p.grad, p_fused.grad), name


@settings(max_examples=60, deadline=None)
@given(params=neurons, shape=shapes, binary=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_currents_and_voltages_equal_slayers_leaky_integrator(params, shape, binary, seed):
    neuron = slayer.neuron.cuba.Neuron(**params)
    current_decay = slayer.utils.quantize(neuron.current_decay)
    voltage_decay = slayer.utils.quantize(neuron.voltage_decay)
    threshold = neuron.threshold + neuron.threshold_eps
    x = _input(shape, binary, seed)
    current = leaky_integrator.dynamics(x, current_decay, torch.zeros(1), neuron.s_scale)
    voltage = leaky_integrator.dynamics(current, voltage_decay, torch.zeros(1), neuron.s_scale, threshold)
    assert torch.equal(integrate(x, current_decay, neuron.s_scale), current)
    spikes, voltage_fused = integrate_and_fire(current, voltage_decay, neuron.s_scale, threshold, 1.0, 1.0)
    assert torch.equal(voltage_fused.movedim(0, -1), voltage)
    assert torch.equal(spikes, (voltage >= threshold).float())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("norm", [False, True])
def test_many_neurons_on_several_threads_equal_slayers(threads, norm):
    """Several blocks of neurons and a partial one (the loops run blocks in parallel), forward and backward."""
    params = {"threshold": 0.7, "current_decay": 0.3, "voltage_decay": 0.1, "tau_grad": 0.5, "scale_grad": 1.0}
    reference, fused = _pair(params, norm)
    x = _input((3, 5, (11, 19), 6), binary=False, seed=threads)  # 3 * 5 * 11 * 19 = 3,135 neurons
    assert x[..., 0].numel() > 6 * CHUNK
    x.requires_grad_()
    x_fused = x.detach().clone().requires_grad_()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        spikes, spikes_fused = reference(x), fused(x_fused)
        grad = torch.randn(spikes.shape, generator=torch.Generator().manual_seed(1))
        (spikes * grad).sum().backward()
        (spikes_fused * grad).sum().backward()
    finally:
        torch.set_num_threads(before)
    assert spikes.any() and torch.equal(spikes, spikes_fused)
    assert torch.equal(x.grad, x_fused.grad)


def test_the_threshold_compares_as_slayer_does_at_the_edge():
    """States exactly at, just below and just above ``threshold * scale`` (slayer compares in float32)."""
    neuron = slayer.neuron.cuba.Neuron(threshold=1.0, current_decay=1.0, voltage_decay=0.0)
    scale = neuron.s_scale
    steps = torch.tensor([scale - 1, scale, scale + 1, 0, scale, 1]) / scale
    x = steps.repeat(2, 3, 1)
    fused = use_fused_dynamics(torch.nn.Sequential(copy.deepcopy(neuron)))[0]
    assert torch.equal(fused(x), neuron(x))


def test_a_network_trains_to_the_same_weights():
    """Three AdamW steps of a quantized conv network with BatchNorm: every weight equal after each."""
    config = ModelConfig.from_arch("4c3-8c3s2-p2-16-3", (1, 8, 8), 3, norm="bn")
    torch.manual_seed(0)
    fused = quantize_model(build_model(config), QuantConfig(4))
    reference = use_fused_dynamics(copy.deepcopy(fused), enabled=False)
    optimizers = [torch.optim.AdamW(net.parameters(), lr=1e-2) for net in (fused, reference)]
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = (torch.rand(4, 1, 8, 8, 6, generator=generator) < 0.5).float()
        outputs = []
        for net, optimizer in zip((fused, reference), optimizers, strict=True):
            out = net(x)
            optimizer.zero_grad()
            out.sum(-1).logsumexp(1).sum().backward()
            optimizer.step()
            outputs.append(out)
        assert torch.equal(*outputs)
        for (name, a), b in zip(fused.state_dict().items(), reference.state_dict().values(), strict=True):
            assert torch.equal(a, b), name


def test_switching_is_explicit_and_reversible():
    config = ModelConfig.from_arch("conv", (1, 8, 8), 3)
    net = build_model(config)
    neurons = [block.neuron for block in net.blocks if getattr(block, "neuron", None) is not None]
    assert neurons and all(type(n) is FusedNeuron for n in neurons)  # build_model switches it on
    keys = list(net.state_dict())
    use_fused_dynamics(net, enabled=False)
    assert all(type(n) is slayer.neuron.cuba.Neuron for n in neurons)
    assert list(net.state_dict()) == keys
    use_fused_dynamics(net)
    assert all(type(n) is FusedNeuron for n in neurons)


def test_other_neurons_run_slayers_code():
    """Learnable decays and persistent state take slayer's path, with slayer's results."""
    for params in ({"requires_grad": True}, {"persistent_state": True}):
        reference = slayer.neuron.cuba.Neuron(1.0, 0.5, 0.5, **params)
        fused = use_fused_dynamics(torch.nn.Sequential(copy.deepcopy(reference)))[0]
        x = torch.randn(2, 3, 7)
        assert not fused.fuses(x)
        assert torch.equal(fused(x), reference(x))
