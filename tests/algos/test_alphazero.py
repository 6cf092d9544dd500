"""AlphaZero's learner: the networks, the replay window, the loss going down, state round trips."""

import numpy as np
import pytest
import torch

from rlexp.algos.alphazero import AlphaZero, ReplayWindow
from rlexp.config import AlphaZeroConfig, DeviceConfig, NetworkConfig
from rlexp.errors import ConfigError
from rlexp.games.openspiel import GameSpec, load_game
from rlexp.networks.policy_value import MLPPolicyValue, ResNetPolicyValue, build_policy_value

C4 = GameSpec.of(load_game("connect_four"))


def test_networks_are_sized_from_the_game():
    net = build_policy_value(NetworkConfig(resnet_blocks=2, resnet_channels=16), C4.obs_shape, C4.num_actions)
    assert isinstance(net, ResNetPolicyValue)  # auto: a board-shaped observation gets the residual tower
    logits, value = net.eval()(torch.zeros(5, *C4.obs_shape))
    assert logits.shape == (5, 7) and value.shape == (5,) and (value.abs() <= 1).all()
    mlp = build_policy_value(NetworkConfig(name="mlp", hidden_sizes=[32]), C4.obs_shape, C4.num_actions)
    assert isinstance(mlp, MLPPolicyValue) and mlp(torch.zeros(2, *C4.obs_shape))[0].shape == (2, 7)
    with pytest.raises(ConfigError, match="network=nature_cnn is for Atari frames"):
        build_policy_value(NetworkConfig(name="nature_cnn"), C4.obs_shape, C4.num_actions)
    with pytest.raises(ConfigError, match="network=resnet needs a board-shaped"):
        build_policy_value(NetworkConfig(name="resnet"), (10,), 3)


def test_the_window_keeps_the_newest_positions():
    window = ReplayWindow(5, (2,), 3)
    for k in range(3):
        window.add(np.full((3, 2), k, np.float32), np.zeros((3, 3), np.float32), np.full(3, k, np.float32))
    assert window.size == 5 and sorted(window.outcome.tolist()) == [1, 1, 2, 2, 2]
    again = ReplayWindow(5, (2,), 3)
    again.load_state_dict(window.state_dict())
    assert np.array_equal(again.obs, window.obs) and again.next == window.next


def _learner(**kw):
    cfg = AlphaZeroConfig(batch_size=32, lr=3e-3, replay_window_positions=1000, **kw)
    return AlphaZero(cfg, C4, NetworkConfig(resnet_blocks=1, resnet_channels=16), torch.device("cpu"), 0)


def test_training_fits_the_targets_and_the_state_round_trips():
    learner = _learner()
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 2, size=(64, *C4.obs_shape)).astype(np.float32)
    policy = np.eye(7, dtype=np.float32)[rng.integers(7, size=64)]
    outcome = rng.choice([-1.0, 1.0], size=64).astype(np.float32)
    learner.add(obs, policy, outcome)
    first = learner.train(1)
    for _ in range(10):
        last = learner.train(20)
    assert last["loss/policy"] < 0.5 * first["loss/policy"] and last["loss/value"] < 0.5 * first["loss/value"]
    assert last["train/updates"] == 201
    logits, values = learner.evaluate(obs[:4])
    again = _learner()
    again.load_state_dict(learner.state_dict())
    again.load_buffer_state(learner.buffer_state())
    assert np.array_equal(again.evaluate(obs[:4])[0], logits) and again.window.size == 64 and again.updates == 201
    assert learner.non_finite() == ""


@pytest.mark.slow
def test_amp_and_compile_serve_the_search_and_train():
    for compute in (DeviceConfig(amp=True), DeviceConfig(compile=True)):
        cfg = AlphaZeroConfig(batch_size=8, replay_window_positions=100)
        learner = AlphaZero(cfg, C4, NetworkConfig(name="mlp", hidden_sizes=[16]), torch.device("cpu"), 0, compute)
        obs = np.zeros((8, *C4.obs_shape), np.float32)
        logits, values = learner.evaluate(obs)
        assert logits.dtype == np.float32 and logits.shape == (8, 7)
        learner.add(obs, np.full((8, 7), 1 / 7, np.float32), np.zeros(8, np.float32))
        assert np.isfinite(learner.train(2)["loss/policy"])
