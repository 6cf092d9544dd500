"""Networks of the off-policy continuous-control learners (SAC, TD3, DDPG): a critic ensemble
computed as one batched network, a tanh-squashed Gaussian actor and a deterministic actor.

Actions here are normalized to [-1, 1] in every dimension; the learner maps them to the
env's bounds.

Each network also has a hand-written gradient (the learners' fast path, ``device.fast_path``):
a forward pass without a graph that keeps what the backward needs, and a backward that
writes the weights' gradients into their ``.grad`` (views of one flat tensor:
``networks.flatten_parameters``) or returns the gradient with respect to the action. These
are the kernels autograd would run, less its bookkeeping, which on networks this small costs
as much as the arithmetic; ``tests/networks/test_continuous_grad.py`` holds them equal to
autograd's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rlexp.networks import _ACTIVATION_BACKWARD, _ACTIVATION_FNS, _ACTIVATION_IN_PLACE, MLP

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the Gaussian actor's log std range (Haarnoja et al.'s softlearning, SB3)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class CriticEnsemble(nn.Module):
    """``members`` Q networks ``Q_i(obs, action)`` of the same shape, computed together: each
    layer is one batched matrix product over the members (``torch.baddbmm``) instead of one
    product per member. Each member's weights are initialized as ``nn.Linear`` initializes
    a layer of its width, independently."""

    def __init__(self, members: int, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        widths = [obs_dim + action_dim, *hidden_sizes, 1]
        self.members = members
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))
        self.activation = activation
        self._act = _ACTIVATION_FNS[activation]
        self._act_in_place = _ACTIVATION_IN_PLACE.get(activation, self._act)  # for passes without a graph

    @property
    def manual_grad(self) -> bool:
        """Whether the hand-written gradient knows this activation (relu, tanh)."""
        return self.activation in _ACTIVATION_BACKWARD

    def forward(self, obs: torch.Tensor, action: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """Every member's Q of each (observation, action) row, ``(members, batch)``; ``frozen``:
        the weights take no gradient (the actor's loss differentiates only through the action)."""
        x = torch.cat([obs.flatten(1), action], dim=1).expand(self.members, -1, -1)
        last = len(self.weights) - 1
        # without a graph (a target's forward) the activation overwrites the layer's fresh output
        # instead of writing one more (members, batch, width) tensor
        act = self._act if torch.is_grad_enabled() else self._act_in_place
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if frozen:
                w, b = w.detach(), b.detach()
            if i < last:
                x = act(torch.baddbmm(b, x, w))
            else:  # one output: a weighted sum (a batched product with one column is several times slower on CPU)
                x = (x * w.transpose(1, 2)).sum(-1) + b[:, :, 0]
        return x

    @torch.no_grad()
    def forward_saving(self, obs: torch.Tensor, action: torch.Tensor,
                       members: slice = slice(None)) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`forward` of the ``members`` without a graph, ``(members, batch)``, and each
        layer's input (what :meth:`backward` needs)."""
        x = torch.cat([obs.flatten(1), action], dim=1)
        inputs, last = [], len(self.weights) - 1
        activate = _ACTIVATION_IN_PLACE[self.activation]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            w, b = w[members], b[members]
            x = x.expand(len(w), -1, -1) if i == 0 else x
            inputs.append(x)
            if i < last:
                x = activate(torch.baddbmm(b, x, w))
            else:
                x = (x * w.transpose(1, 2)).sum(-1) + b[:, :, 0]
        return x, inputs

    @torch.no_grad()
    def backward(self, inputs: list[torch.Tensor], grad_q: torch.Tensor, members: slice = slice(None),
                 weights: bool = True, action_dim: int = 0) -> torch.Tensor | None:
        """Backpropagate ``grad_q`` = d(loss)/d(Q) ``(members, batch)`` through what
        :meth:`forward_saving` kept. ``weights``: write the members' weight and bias gradients
        into their ``.grad`` (overwriting it); ``action_dim``: return d(loss)/d(action),
        ``(batch, action_dim)``, summed over the members (the action is the input's last
        ``action_dim`` columns)."""
        act_backward = _ACTIVATION_BACKWARD[self.activation]
        last = len(self.weights) - 1
        w = self.weights[last][members]
        if weights:
            torch.bmm(inputs[last].transpose(1, 2), grad_q.unsqueeze(-1), out=self.weights[last].grad[members])
            torch.sum(grad_q.unsqueeze(-1), 1, keepdim=True, out=self.biases[last].grad[members])
        g = grad_q.unsqueeze(-1) * w.transpose(1, 2)  # d(loss)/d(last hidden layer's output)
        for i in range(last - 1, -1, -1):
            w = self.weights[i][members]
            g = act_backward(g, inputs[i + 1])  # inputs[i + 1] is layer i's activated output
            if weights:
                torch.bmm(inputs[i].transpose(1, 2), g, out=self.weights[i].grad[members])
                torch.sum(g, 1, keepdim=True, out=self.biases[i].grad[members])
            if i:
                g = torch.bmm(g, w.transpose(1, 2))
            elif action_dim:
                return torch.bmm(g, w[:, -action_dim:].transpose(1, 2)).sum(0)
        return None

    @torch.no_grad()
    def backward_of_min(self, inputs: list[torch.Tensor], q: torch.Tensor, scale: float,
                        action_dim: int) -> torch.Tensor:
        """d(loss)/d(action) ``(batch, action_dim)`` for ``loss = scale * sum over rows of min_i
        Q_i``, from what :meth:`forward_saving` kept of every member (``q``: its output).

        A row's gradient flows only through its smallest member (shared equally on ties, as
        autograd's ``amin``). :meth:`backward` with that gradient would backpropagate every
        member over every row, half of them zeros with two members. Here each member takes only
        the rows where it is smallest: half the arithmetic. Picking the rows reads their count
        back from the device, which on a GPU costs more than it saves, so there this is
        :meth:`backward`."""
        smallest = q == q.amin(0)  # (members, batch)
        grad_q = smallest / smallest.sum(0) * scale  # d(loss)/dQ_i: scale on the row's smallest, shared on ties
        if q.device.type != "cpu":
            return self.backward(inputs, grad_q, weights=False, action_dim=action_dim)
        act_backward = _ACTIVATION_BACKWARD[self.activation]
        last = len(self.weights) - 1
        grad_action = q.new_zeros(q.shape[1], action_dim)
        for m in range(self.members):
            rows = smallest[m].nonzero().squeeze(1)
            if not len(rows):
                continue
            g = grad_q[m, rows].unsqueeze(1) * self.weights[last][m].t()  # d(loss)/d(last hidden output)
            for i in range(last - 1, -1, -1):
                g = act_backward(g, inputs[i + 1][m].index_select(0, rows))
                if i:
                    g = g.mm(self.weights[i][m].t())
            grad_action.index_add_(0, rows, g.mm(self.weights[0][m, -action_dim:].t()))
        return grad_action


class SquashedGaussianActor(nn.Module):
    """SAC's policy (Haarnoja et al. 2018): a Gaussian whose mean and log std (clamped to
    [-20, 2]) an MLP gives per observation, its draw squashed by tanh into [-1, 1], with the
    log-probability corrected for the squashing."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.trunk = MLP(obs_dim, None, hidden_sizes, activation)
        self.out = nn.Linear(self.trunk.out_features, 2 * action_dim)

    def _mean_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.out(self.trunk(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action in [-1, 1], its log-probability ``(batch,)``), reparameterized: the gradient
        flows through the draw. ``noise``: the standard normal draw ``(batch, action_dim)``,
        else drawn here from ``generator``."""
        mean, log_std = self._mean_log_std(obs)
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return squash(mean, log_std, noise)

    @torch.no_grad()
    def sample_saving(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """:meth:`sample` without a graph, and what :meth:`backward_into_grad` needs."""
        hidden, inputs = self.trunk.forward_saving(obs)
        raw = torch.addmm(self.out.bias, hidden, self.out.weight.t())
        mean, raw_log_std = raw.chunk(2, dim=-1)
        log_std = raw_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        action, log_prob = squash(mean, log_std, noise)
        return action, log_prob, (inputs, hidden, raw_log_std, log_std.exp(), noise, action)

    @torch.no_grad()
    def backward_into_grad(self, saved: tuple, rows: slice, grad_action: torch.Tensor,
                           grad_log_prob: torch.Tensor) -> None:
        """Write every weight's gradient into its ``.grad`` (overwriting it), given d(loss)/d(action)
        ``(rows, action_dim)`` and d(loss)/d(log-probability) ``(rows,)`` for the ``rows`` of
        what :meth:`sample_saving` returned."""
        inputs, hidden, raw_log_std, std, noise, action = (
            [x[rows] for x in saved[0]], *(x[rows] for x in saved[1:]))
        grad_log_prob = grad_log_prob.unsqueeze(-1)
        # u = mean + std * noise, action = tanh(u): d action/du = 1 - action^2 and, from the
        # squashing correction -log(1 - tanh(u)^2), d log_prob/du = 2 action
        grad_u = grad_action * (1 - action.square()) + grad_log_prob * 2 * action
        # d log_prob/d log_std = -1 (the Gaussian's normalizer) + d log_prob/du * std * noise;
        # no gradient where the clamp to [LOG_STD_MIN, LOG_STD_MAX] held (as autograd's clamp)
        inside = (raw_log_std >= LOG_STD_MIN) & (raw_log_std <= LOG_STD_MAX)
        grad_log_std = (grad_u * std * noise - grad_log_prob) * inside
        grad_raw = torch.cat([grad_u, grad_log_std], dim=-1)
        torch.mm(grad_raw.t(), hidden, out=self.out.weight.grad)
        torch.sum(grad_raw, 0, out=self.out.bias.grad)
        self.trunk.backward_into_grad(inputs, hidden, grad_raw.mm(self.out.weight))

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action: tanh of the mean."""
        return torch.tanh(self._mean_log_std(obs)[0])


def squash(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(mean + std * noise) and its log-probability under the squashed Gaussian."""
    u = mean + log_std.exp() * noise
    log_prob = (-0.5 * noise.square() - log_std - _LOG_SQRT_2PI).sum(-1)
    # log |d tanh(u) / du| = log(1 - tanh(u)^2), written stably as 2 (log 2 - u - softplus(-2u))
    log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), log_prob


class DeterministicActor(nn.Module):
    """TD3's and DDPG's policy: an MLP whose tanh output is the action in [-1, 1]."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.net = MLP(obs_dim, action_dim, hidden_sizes, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))

    @torch.no_grad()
    def forward_saving(self, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`forward` without a graph, and the layers' inputs (for :meth:`backward_into_grad`)."""
        out, inputs = self.net.forward_saving(obs)
        return out.tanh_(), inputs

    @torch.no_grad()
    def backward_into_grad(self, inputs: list[torch.Tensor], action: torch.Tensor, grad_action: torch.Tensor) -> None:
        """Write every weight's gradient into its ``.grad`` given d(loss)/d(action)."""
        self.net.backward_into_grad(inputs, action, torch.ops.aten.tanh_backward(grad_action, action))
