"""The continuous-control networks' hand-written gradients (the SAC/TD3 fast path) against autograd's.

The backward passes run the kernels autograd runs but may sum in another order (a batched
product where autograd multiplies and reduces), so they agree to float32 rounding, not bit
for bit; the learners' own equality test is tests/algos/test_off_policy.py.
"""

from __future__ import annotations

import pytest
import torch

from rlexp.networks import flatten_parameters
from rlexp.networks.continuous import CriticEnsemble, DeterministicActor, SquashedGaussianActor

OBS, ACT, BATCH = 7, 3, 64


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("members", [slice(None), slice(0, 1)])
def test_critic_ensemble_weight_and_action_gradients_are_autograds(activation, members):
    torch.manual_seed(0)
    critic = CriticEnsemble(2, OBS, ACT, [32, 16], activation)
    flat = flatten_parameters(critic)
    obs, action = torch.randn(BATCH, OBS), torch.rand(BATCH, ACT) * 2 - 1
    weights = torch.randn(2, BATCH)[members]  # loss = sum(weights * Q)

    action_ref = action.clone().requires_grad_(True)
    flat.grad.zero_()
    (critic(obs, action_ref)[members] * weights).sum().backward()
    expected = [p.grad[members].clone() for p in critic.parameters()]

    flat.grad.fill_(123.0)  # overwritten, not accumulated
    q, inputs = critic.forward_saving(obs, action, members)
    assert torch.equal(q, critic(obs, action)[members].detach())
    critic.backward(inputs, weights, members)
    for param, grad in zip(critic.parameters(), expected):
        close(param.grad[members], grad)

    before = flat.grad.clone()
    grad_action = critic.backward(inputs, weights, members, weights=False, action_dim=ACT)
    assert torch.equal(flat.grad, before)  # weights=False leaves .grad alone
    close(grad_action, action_ref.grad)
    assert critic.manual_grad


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("members,tied", [(2, False), (3, False), (1, False), (2, True)])
def test_gradient_of_the_smallest_critic_is_autograds(activation, members, tied):
    """SAC's actor gradient through min_i Q_i, each member over only the rows where it is the
    smallest: autograd's, with ties shared equally as amin shares them."""
    torch.manual_seed(3)
    critic = CriticEnsemble(members, OBS, ACT, [32, 16], activation)
    flatten_parameters(critic)
    if tied:  # two identical members: every row ties
        with torch.no_grad():
            for w, b in zip(critic.weights, critic.biases):
                w[1], b[1] = w[0], b[0]
    obs, action = torch.randn(BATCH, OBS), torch.rand(BATCH, ACT) * 2 - 1
    if not tied:  # members centred on the same mean, so that each is the smallest on some rows
        with torch.no_grad():
            critic.biases[-1] -= critic(obs, action).mean(1).view(members, 1, 1)
    action_ref = action.clone().requires_grad_(True)
    (-0.25 * critic(obs, action_ref).amin(0).sum()).backward()

    q, inputs = critic.forward_saving(obs, action)
    if tied:
        assert torch.equal(q[0], q[1])
    else:  # every member is the smallest on some rows
        assert bool((q.argmin(0).bincount(minlength=members) > 0).all())
    before = [p.grad.clone() for p in critic.parameters()]
    close(critic.backward_of_min(inputs, q, -0.25, ACT), action_ref.grad)
    assert all(torch.equal(p.grad, b) for p, b in zip(critic.parameters(), before))  # the weights' .grad untouched


def test_squashed_gaussian_gradients_are_autograds():
    torch.manual_seed(1)
    actor = SquashedGaussianActor(OBS, ACT, [32, 32])
    flat = flatten_parameters(actor)
    with torch.no_grad():  # some log stds beyond the clamp, on both sides: no gradient there
        actor.out.bias[ACT:] = torch.tensor([4.0, -25.0, 0.0])
    obs, noise = torch.randn(2 * BATCH, OBS), torch.randn(2 * BATCH, ACT)
    grad_action, grad_log_prob = torch.randn(BATCH, ACT), torch.randn(BATCH)
    rows = slice(BATCH, None)  # the second half, as SAC's update runs its actor over [next_obs; obs]

    flat.grad.zero_()
    action, log_prob = actor.sample(obs[rows], noise=noise[rows])
    ((action * grad_action).sum() + (log_prob * grad_log_prob).sum()).backward()
    expected = flat.grad.clone()

    flat.grad.fill_(123.0)
    fast_action, fast_log_prob, saved = actor.sample_saving(obs, noise)
    close(fast_action[rows], action.detach())
    close(fast_log_prob[rows], log_prob.detach())
    actor.backward_into_grad(saved, rows, grad_action, grad_log_prob)
    close(flat.grad, expected)


def test_deterministic_actor_gradient_is_autograds():
    torch.manual_seed(2)
    actor = DeterministicActor(OBS, ACT, [32, 32])
    flat = flatten_parameters(actor)
    obs, grad_action = torch.randn(BATCH, OBS), torch.randn(BATCH, ACT)
    flat.grad.zero_()
    (actor(obs) * grad_action).sum().backward()
    expected = flat.grad.clone()

    flat.grad.fill_(123.0)
    action, inputs = actor.forward_saving(obs)
    assert torch.equal(action, actor(obs).detach())
    actor.backward_into_grad(inputs, action, grad_action)
    close(flat.grad, expected)
