"""Function approximators, sized from the env's spaces at build time (never from YAML)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlexp.config import NetworkConfig
from rlexp.errors import ConfigError
from rlexp.networks.heads import CategoricalHead, GaussianHead, PolicyHead, policy_head
from rlexp.networks.normalization import RunningMeanStd

__all__ = [
    "MLP", "NatureCNN", "ActorCritic", "CategoricalHead", "GaussianHead", "PolicyHead", "RunningMeanStd",
    "build_q_network", "build_actor_critic", "flatten_parameters", "is_image_space", "policy_head",
    "resolve_architecture",
]

_ACTIVATION_FNS = {"relu": torch.relu, "tanh": torch.tanh, "elu": F.elu, "gelu": F.gelu, "silu": F.silu}
_ACTIVATION_IN_PLACE = {"relu": torch.relu_, "tanh": torch.tanh_}
# the kernels autograd runs for an activation's backward, given the gradient and the activated output
_ACTIVATION_BACKWARD = {
    "relu": lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0),
    "tanh": torch.ops.aten.tanh_backward,
}


class MLP(nn.Module):
    """Flatten the observation, then fully connected layers with one activation.

    ``out_features=None`` makes a trunk: the last hidden layer is the output, activated.
    """

    def __init__(self, in_features: int, out_features: int | None, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        widths = [in_features, *hidden_sizes] + ([out_features] if out_features is not None else [])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = activation
        self._act = _ACTIVATION_FNS[activation]
        self._act_in_place = _ACTIVATION_IN_PLACE.get(activation, self._act)  # for passes without a graph
        self._activate_last = out_features is None
        self.out_features = widths[-1]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # F.linear on the layers' tensors instead of calling each submodule: the module-call
        # machinery costs more than a small layer's arithmetic (this runs once per env step).
        x = obs.flatten(1)
        last = len(self.layers) - (0 if self._activate_last else 1)
        # without a graph (acting, a target network) the activation overwrites the layer's fresh
        # output instead of writing one more tensor
        act = self._act if torch.is_grad_enabled() else self._act_in_place
        for i, layer in enumerate(self.layers):
            x = F.linear(x, layer.weight, layer.bias)
            if i < last:
                x = act(x)
        return x

    # ------------------------------------------------------------------ the hand-written gradient
    # On classic-control networks autograd's bookkeeping (graph nodes, accumulation, hooks)
    # costs more than the arithmetic (the README's performance section has measured update
    # times with and without it). A learner that knows d(loss)/d(output) calls
    # forward_saving and backward_into_grad instead: the same aten kernels autograd runs, in
    # the same order, so the gradients are bit-identical (tests/networks/test_mlp_grad.py).

    @property
    def manual_grad(self) -> bool:
        """Whether :meth:`backward_into_grad` knows this network's activation (relu, tanh)."""
        return self.activation in _ACTIVATION_BACKWARD

    @torch.no_grad()
    def forward_saving(self, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`forward` without a graph, also returning each layer's input (what
        :meth:`backward_into_grad` needs)."""
        x = obs.flatten(1)
        inputs = []
        last = len(self.layers) - (0 if self._activate_last else 1)
        for i, layer in enumerate(self.layers):
            inputs.append(x)
            x = torch.addmm(layer.bias, x, layer.weight.t())  # what F.linear runs on a batch
            if i < last:
                x = _ACTIVATION_IN_PLACE[self.activation](x)  # no graph: no copy to keep
        return x, inputs

    @torch.no_grad()
    def backward_into_grad(self, inputs: list[torch.Tensor], output: torch.Tensor, grad_output: torch.Tensor) -> None:
        """Write d(loss)/d(weight) and d(loss)/d(bias) of every layer into its ``.grad``
        (overwriting it), given ``grad_output`` = d(loss)/d(output) and what
        :meth:`forward_saving` returned. Needs ``.grad`` tensors (``flatten_parameters``)."""
        act_backward = _ACTIVATION_BACKWARD[self.activation]
        g = act_backward(grad_output, output) if self._activate_last else grad_output
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            torch.mm(g.t(), inputs[i], out=layer.weight.grad)
            torch.sum(g, 0, out=layer.bias.grad)
            if i:
                g = act_backward(g.mm(layer.weight), inputs[i])  # inputs[i] is layer i-1's activated output


class NatureCNN(nn.Module):
    """The DQN Nature network (Mnih et al. 2015): 3 conv layers and a 512-unit layer.

    Takes uint8 frames (N, C, H, W) as stored, so observations cross to the device as
    bytes, and scales them to [0, 1] there.
    """

    def __init__(self, obs_shape: tuple[int, ...], out_features: int, hidden_size: int = 512):
        super().__init__()
        channels = obs_shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *obs_shape)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, hidden_size), nn.ReLU(), nn.Linear(hidden_size, out_features))
        # channels-last convolutions: a faster backward on CPU (oneDNN), the fast path on GPU
        self.convs.to(memory_format=torch.channels_last)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(scale_frames(obs)))


def scale_frames(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames (N, C, H, W) as [0, 1] floats, channels-last, in one copy: in bfloat16 under
    a bfloat16 autocast (``device.amp``), where the first convolution would cast them to it
    anyway (the same values: every byte is exact in bfloat16, and the division rounds once
    either way), else in float32. Float frames are already scaled (an augmentation made them)."""
    if obs.is_floating_point():
        return obs.contiguous(memory_format=torch.channels_last)
    kind = obs.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else torch.float32
    return obs.to(dtype=dtype, memory_format=torch.channels_last).div_(255.0)


def is_image_space(space: gym.Space) -> bool:
    """uint8 boxes of shape (C, H, W): stacked frames."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def resolve_architecture(cfg: NetworkConfig, obs_space: gym.Space) -> str:
    """``mlp`` or ``nature_cnn`` for this observation space (``auto``: the CNN for frames).

    Raises:
        ConfigError: the observations do not fit the chosen architecture.
    """
    if not isinstance(obs_space, gym.spaces.Box):
        raise ConfigError(
            f"network={cfg.name} needs Box (vector or image) observations, the env has {obs_space}; "
            "for discrete states use a tabular algorithm: algo=q_learning, sarsa or value_iteration"
        )
    if cfg.name == "resnet":
        raise ConfigError("network=resnet is the board games' residual tower (algo=alphazero); use network=auto, mlp "
                          "or nature_cnn")
    image = is_image_space(obs_space)
    name = ("nature_cnn" if image else "mlp") if cfg.name == "auto" else cfg.name
    if name == "mlp" and image:
        raise ConfigError(
            f"network=mlp cannot take image observations {obs_space.shape}; use network=nature_cnn or network=auto"
        )
    if name == "nature_cnn" and not image:
        raise ConfigError(
            f"network=nature_cnn needs uint8 image observations (C, H, W), the env has {obs_space.shape} "
            f"{obs_space.dtype}; use network=mlp or network=auto"
        )
    return name


def build_q_network(cfg: NetworkConfig, obs_space: gym.Space, action_space: gym.Space, atoms: int = 1,
                    dueling: bool = False, noisy: bool = False, noisy_std_init: float = 0.5) -> nn.Module:
    """A Q-network with one output per discrete action (``atoms`` per action for a value
    distribution); ``auto`` picks the CNN for frames. The plain network is the MLP or the
    Nature CNN itself (the MLP has a hand-written gradient); dueling streams, noisy layers
    or atoms make it a :class:`~rlexp.networks.q.QNetwork` with the same layers.

    Raises:
        ConfigError: the spaces do not fit the network.
    """
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"a Q-network needs a discrete action space, the env has {action_space}; "
            "choose a discrete-action env (e.g. env=cartpole) or an actor-critic (algo=ppo, a2c or reinforce)"
        )
    cnn = resolve_architecture(cfg, obs_space) == "nature_cnn"
    n_actions = int(action_space.n)
    if atoms > 1 or dueling or noisy:
        from rlexp.networks.q import QNetwork, q_network_trunk

        trunk, width, hidden = q_network_trunk(obs_space.shape, cnn, list(cfg.hidden_sizes), cfg.activation,
                                               cfg.cnn_hidden_size)
        return QNetwork(trunk, width, hidden, n_actions, atoms, dueling, noisy, noisy_std_init,
                        "relu" if cnn else cfg.activation)
    if cnn:
        return NatureCNN(obs_space.shape, n_actions, cfg.cnn_hidden_size)
    in_features = int(np.prod(obs_space.shape))
    return MLP(in_features, n_actions, list(cfg.hidden_sizes), cfg.activation)


def flatten_parameters(module: nn.Module, with_grad: bool = True) -> nn.Parameter:
    """Re-home a module's parameters (and their gradients) as views of one flat tensor.

    Returns the flat parameter, whose ``.grad`` holds every gradient. An optimizer given
    ``[flat]`` then updates the whole network in a handful of kernels instead of a few per
    layer, which is most of an update's cost for the small networks of classic control.
    Backward accumulates into the views, so zero ``flat.grad`` (do not set it to None)
    before each backward. ``with_grad=False`` (a target network) allocates no gradient.
    """
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    device, dtype = params[0].device, params[0].dtype
    flat = torch.empty(total, device=device, dtype=dtype)
    grad = torch.zeros(total, device=device, dtype=dtype) if with_grad else None
    offset = 0
    for p in params:
        n = p.numel()
        # as_strided keeps each tensor's memory layout (e.g. channels-last conv weights)
        view = flat[offset : offset + n].as_strided(p.shape, p.stride())
        view.copy_(p.detach())
        p.data = view
        p.grad = grad[offset : offset + n].as_strided(p.shape, p.stride()) if with_grad else None
        offset += n
    flat_param = nn.Parameter(flat, requires_grad=with_grad)
    flat_param.grad = grad
    return flat_param


def _orthogonal(layer: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights and zero biases (the PPO reference implementations' init)."""
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        weight = torch.empty(layer.weight.shape)  # contiguous: orthogonal_ cannot view channels-last
        nn.init.orthogonal_(weight, gain)
        with torch.no_grad():
            layer.weight.copy_(weight)
        nn.init.zeros_(layer.bias)
    return layer


def _body(cfg: NetworkConfig, obs_space: gym.Space, cnn: bool, out_features: int | None) -> nn.Module:
    """Float features -> ``out_features`` outputs, or (None) a trunk ending in an activation.

    Hidden layers get orthogonal init with gain sqrt(2); the caller initializes an output layer.
    """
    if cnn:
        net = NatureCNN(obs_space.shape, cfg.cnn_hidden_size, cfg.cnn_hidden_size)
        layers = [net.convs, net.head[0], nn.ReLU()]
        if out_features is not None:
            layers.append(nn.Linear(cfg.cnn_hidden_size, out_features))
        body = nn.Sequential(*layers)
        hidden = [m for m in body.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    else:
        body = MLP(int(np.prod(obs_space.shape)), out_features, list(cfg.hidden_sizes), cfg.activation)
        hidden = list(body.layers)
    if out_features is not None:
        hidden = hidden[:-1]
    for layer in hidden:
        _orthogonal(layer, np.sqrt(2))
    return body


def _last_linear(module: nn.Module) -> nn.Module:
    if isinstance(module, MLP):
        return module.layers[-1]
    if isinstance(module, nn.Sequential):
        return module[-1]
    return module


class ActorCritic(nn.Module):
    """A policy (actor) and a state-value function (critic), over shared or separate trunks.

    ``forward`` returns the actor's raw outputs (logits, or the Gaussian's mean) and the
    value; ``self.head`` turns the raw outputs into actions and log-probs. With
    ``network.normalize_obs`` the observations pass through running mean/std statistics,
    which the learner updates and which are saved with the weights.
    """

    def __init__(self, cfg: NetworkConfig, obs_space: gym.Space, action_space: gym.Space, cnn: bool):
        super().__init__()
        self.head = policy_head(action_space, cfg.log_std_init, cfg.action_bound)
        self.images = cnn
        self.obs_norm = RunningMeanStd(obs_space.shape) if cfg.normalize_obs else None
        shared = cnn if cfg.shared_trunk is None else cfg.shared_trunk
        self.trunk = _body(cfg, obs_space, cnn, None) if shared else None
        if self.trunk is not None:
            width = cfg.cnn_hidden_size if cnn else self.trunk.out_features
            self.actor = nn.Linear(width, self.head.num_outputs)
            self.critic = nn.Linear(width, 1)
        else:
            self.actor = _body(cfg, obs_space, cnn, self.head.num_outputs)
            self.critic = _body(cfg, obs_space, cnn, 1)
        _orthogonal(_last_linear(self.actor), 0.01)  # near-uniform (or mean-zero) initial policy
        _orthogonal(_last_linear(self.critic), 1.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """What the actor and the critic take: scaled frames, or the (normalized) vector
        observation, through the shared trunk when there is one."""
        if self.images:
            x = scale_frames(obs)
        else:
            x = obs.float()
            if self.obs_norm is not None:
                x = self.obs_norm.normalize(x)
        return x if self.trunk is None else self.trunk(x)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actor outputs (N, head.num_outputs), value (N,))."""
        x = self.features(obs)
        return self.actor(x), self.critic(x).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)


def build_actor_critic(cfg: NetworkConfig, obs_space: gym.Space, action_space: gym.Space) -> ActorCritic:
    """An actor-critic for these spaces: Nature CNN for frames, MLP otherwise; see :class:`ActorCritic`.

    Raises:
        ConfigError: the spaces do not fit (unsupported action space, wrong architecture).
    """
    cnn = resolve_architecture(cfg, obs_space) == "nature_cnn"
    if cnn and cfg.normalize_obs:
        raise ConfigError("network.normalize_obs is for vector observations; image frames are scaled to [0, 1]")
    return ActorCritic(cfg, obs_space, action_space, cnn)
