import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp.config import ConfigError, NetworkConfig
from rlexp.networks import MLP, RunningMeanStd, build_actor_critic, build_q_network

VEC = gym.spaces.Box(-1, 1, (3,), np.float32)
FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, (1000, 3))
    stats = RunningMeanStd((3,))
    for chunk in np.array_split(data, 7):
        stats.update(torch.as_tensor(chunk))
    assert np.allclose(stats.mean.numpy(), data.mean(0)) and np.allclose(stats.var.numpy(), data.var(0))
    x = torch.as_tensor(data[:5], dtype=torch.float32)
    expected = (data[:5] - data.mean(0)) / np.sqrt(data.var(0) + 1e-8)
    assert np.allclose(stats.normalize(x).numpy(), expected, atol=1e-5)
    assert stats.normalize(torch.full((1, 3), 1e6)).max().item() == 10.0  # clipped


@pytest.mark.parametrize("shared, trunk", [(None, False), (True, True), (False, False)])
def test_mlp_actor_critic_trunks(shared, trunk):
    net = build_actor_critic(NetworkConfig(hidden_sizes=[32, 16], shared_trunk=shared), VEC, gym.spaces.Discrete(5))
    assert (net.trunk is not None) == trunk
    out, value = net(torch.zeros(7, 3))
    assert out.shape == (7, 5) and value.shape == (7,)


def test_cnn_actor_critic_shares_by_default_and_can_split():
    shared = build_actor_critic(NetworkConfig(), FRAMES, gym.spaces.Discrete(6))
    split = build_actor_critic(NetworkConfig(shared_trunk=False), FRAMES, gym.spaces.Discrete(6))
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert shared.trunk is not None and split.trunk is None and n(split) > 1.9 * n(shared)
    frames = torch.randint(0, 255, (2, 4, 84, 84), dtype=torch.uint8)
    for net in (shared, split):
        out, value = net(frames)
        assert out.shape == (2, 6) and value.shape == (2,)


def test_orthogonal_init_small_policy_output_and_zero_biases():
    net = build_actor_critic(NetworkConfig(hidden_sizes=[64, 64]), VEC, gym.spaces.Discrete(4))
    policy_out = net.actor.layers[-1].weight
    hidden = net.actor.layers[0].weight
    assert policy_out.abs().max() < 0.05 and hidden.abs().max() > 0.1
    assert all((layer.bias == 0).all() for layer in net.actor.layers)


def test_continuous_actor_critic_has_a_gaussian_head_and_saves_obs_statistics():
    net = build_actor_critic(NetworkConfig(normalize_obs=True, log_std_init=-1.0), VEC,
                             gym.spaces.Box(-2, 2, (1,), np.float32))
    assert net.head.log_std.item() == -1.0
    net.obs_norm.update(torch.randn(50, 3) * 4 + 1)
    state = net.state_dict()
    assert "obs_norm.mean" in state and "head.log_std" in state
    again = build_actor_critic(NetworkConfig(normalize_obs=True), VEC, gym.spaces.Box(-2, 2, (1,), np.float32))
    again.load_state_dict(state)
    x = torch.randn(4, 3)
    assert torch.allclose(again(x)[1], net(x)[1])


def test_frames_refuse_obs_normalization_and_q_networks_refuse_continuous_actions():
    with pytest.raises(ConfigError, match="normalize_obs is for vector observations"):
        build_actor_critic(NetworkConfig(normalize_obs=True), FRAMES, gym.spaces.Discrete(6))
    with pytest.raises(ConfigError, match="Q-network needs a discrete action space"):
        build_q_network(NetworkConfig(), VEC, gym.spaces.Box(-1, 1, (1,)))


def test_mlp_trunk_ends_in_an_activation():
    trunk = MLP(3, None, [8, 4], "relu")
    assert trunk.out_features == 4 and (trunk(torch.randn(20, 3)) >= 0).all()


def test_frames_scale_to_the_same_values_under_a_bfloat16_autocast():
    from rlexp.networks import scale_frames

    frames = torch.arange(256, dtype=torch.uint8).repeat(2, 4, 8, 4)  # every byte value, (2, 4, 8, 128)
    plain = scale_frames(frames)
    assert plain.dtype == torch.float32 and plain.is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = scale_frames(frames)
    assert low.dtype == torch.bfloat16
    assert torch.equal(low, plain.to(torch.bfloat16))
