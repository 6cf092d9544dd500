"""MLP.backward_into_grad: the same gradients as autograd, bit for bit."""

from __future__ import annotations

import pytest
import torch

from rlexp.networks import MLP, flatten_parameters


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("out_features", [3, None])
def test_hand_written_gradient_is_autograds(activation, out_features):
    torch.manual_seed(0)
    net = MLP(5, out_features, [32, 16], activation)
    flat = flatten_parameters(net)
    obs = torch.randn(64, 5)
    weights = torch.randn(64, net.out_features)  # loss = sum(weights * output)

    flat.grad.zero_()
    (net(obs) * weights).sum().backward()
    expected = flat.grad.clone()

    flat.grad.fill_(123.0)  # overwritten, not accumulated
    output, inputs = net.forward_saving(obs)
    assert torch.equal(output, net(obs).detach())
    net.backward_into_grad(inputs, output, weights)
    assert net.manual_grad
    assert torch.equal(flat.grad, expected)


def test_other_activations_use_autograd():
    assert not MLP(4, 2, [8], "gelu").manual_grad
