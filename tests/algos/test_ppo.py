import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlexp.algos.onpolicy import compute_gae
from rlexp.algos.ppo import PPO, clipped_surrogate_loss
from rlexp.config import ConfigError, NetworkConfig, PPOConfig

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


TORQUE = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def make_ppo(num_envs=2, actions=ACTIONS, network=None, **kw) -> PPO:
    cfg = PPOConfig(**{"rollout_steps": 4, "num_minibatches": 2, "update_epochs": 2, **kw})
    network = network or NetworkConfig(hidden_sizes=[8], activation="tanh")
    return PPO(cfg, OBS, actions, network, torch.device("cpu"), 0, num_envs, total_steps=100)


def test_gae_hand_computed_with_an_episode_end_inside():
    # one env, T=3, gamma=0.5, lambda=0.5; the episode ends at t=1 (terminated or truncated:
    # a truncation's bootstrap value is already folded into its reward)
    r = torch.tensor([[1.0], [2.0], [3.0]])
    v = torch.tensor([[0.5], [1.0], [2.0]])
    d = torch.tensor([[0.0], [1.0], [0.0]])
    next_v = torch.tensor([4.0])
    adv, ret = compute_gae(r, v, d, next_v, gamma=0.5, lam=0.5)
    # t=2: delta = 3 + 0.5*4 - 2 = 3;          A2 = 3
    # t=1: delta = 2 + 0 - 1 = 1 (episode end); A1 = 1
    # t=0: delta = 1 + 0.5*1.0 - 0.5 = 1;       A0 = 1 + 0.25*1 = 1.25
    assert adv.squeeze(1).tolist() == pytest.approx([1.25, 1.0, 3.0])
    assert ret.squeeze(1).tolist() == pytest.approx([1.75, 2.0, 5.0])


def test_gae_lambda_one_is_monte_carlo_and_zero_is_td():
    r = torch.tensor([[1.0], [1.0]])
    v = torch.tensor([[0.3], [0.7]])
    d = torch.zeros(2, 1)
    nv = torch.tensor([2.0])
    adv1, _ = compute_gae(r, v, d, nv, gamma=0.9, lam=1.0)
    assert adv1[0, 0].item() == pytest.approx(1 + 0.9 * 1 + 0.81 * 2 - 0.3)
    adv0, _ = compute_gae(r, v, d, nv, gamma=0.9, lam=0.0)
    assert adv0[0, 0].item() == pytest.approx(1 + 0.9 * 0.7 - 0.3)


@pytest.mark.parametrize(("adv", "ratio", "zero_grad"), [
    (1.0, 1.5, True),    # positive advantage, ratio above 1+eps: clipped, no gradient
    (1.0, 1.1, False),   # inside the range
    (-1.0, 0.5, True),   # negative advantage, ratio below 1-eps: clipped
    (-1.0, 1.5, False),  # negative advantage above the range: the pessimistic unclipped term
])
def test_clipped_objective_gradient_vanishes_outside_the_range(adv, ratio, zero_grad):
    r = torch.tensor([ratio], requires_grad=True)
    clipped_surrogate_loss(torch.tensor([adv]), r, clip=0.2).backward()
    assert (r.grad.abs().item() == 0.0) == zero_grad


def _step(algo, n, step, truncated=None, rewards=None):
    obs = np.zeros((n, 3), np.float32)
    actions = algo.act(obs, step)
    trunc = np.zeros(n, bool) if truncated is None else truncated
    rew = np.ones(n, np.float32) if rewards is None else rewards
    return algo.observe(obs, actions, rew, obs + 0.5, np.zeros(n, bool), trunc, step)


def test_updates_once_per_rollout_with_epochs_times_minibatches():
    algo = make_ppo()
    metrics = [_step(algo, 2, 2 * k) for k in range(8)]
    assert [bool(m) for m in metrics] == [False, False, False, True] * 2
    assert algo.updates == 2 * (2 * 2)  # rollouts x epochs x minibatches
    assert {"loss/policy", "loss/value", "loss/entropy", "train/approx_kl", "train/clipfrac"} <= set(metrics[3])


def test_truncation_bootstraps_from_the_final_observation():
    algo = make_ppo(num_envs=1, rollout_steps=8)
    _step(algo, 1, 0, truncated=np.array([True]), rewards=np.array([1.0], np.float32))
    with torch.no_grad():
        v_final = algo.net.value(torch.full((1, 3), 0.5)).item()
    assert algo.rollout.rewards[0, 0].item() == pytest.approx(1.0 + algo.cfg.gamma * v_final)
    assert algo.rollout.dones[0, 0].item() == 1.0


def test_learning_rate_anneals_to_zero():
    algo = make_ppo(lr=1e-3)
    for k in range(8):
        _step(algo, 2, 2 * k)
    assert algo.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 16 / 100))


def test_state_round_trip_and_greedy_predict():
    a = make_ppo()
    for k in range(4):
        _step(a, 2, 2 * k)
    b = make_ppo()
    b.load_state_dict(a.state_dict())
    obs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    assert np.array_equal(a.predict(obs), b.predict(obs)) and b.updates == a.updates


def test_refuses_action_spaces_without_a_head_and_tiny_rollouts():
    with pytest.raises(ConfigError, match="Discrete and Box action spaces, the env has MultiDiscrete"):
        PPO(PPOConfig(), OBS, gym.spaces.MultiDiscrete([2, 3]), NetworkConfig(), torch.device("cpu"), 0, 1)
    with pytest.raises(ConfigError, match="need finite bounds"):
        PPO(PPOConfig(), OBS, gym.spaces.Box(-np.inf, np.inf, (2,)), NetworkConfig(), torch.device("cpu"), 0, 1)
    with pytest.raises(ConfigError, match="num_minibatches=8 exceeds the rollout of 4"):
        make_ppo(num_envs=1, num_minibatches=8)


def test_image_observations_use_a_shared_cnn():
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    algo = PPO(PPOConfig(rollout_steps=2, num_minibatches=1, update_epochs=1), frames, gym.spaces.Discrete(6),
               NetworkConfig(), torch.device("cpu"), 0, 2)
    assert algo.net.trunk is not None
    obs = np.random.default_rng(0).integers(0, 255, (2, 4, 84, 84), dtype=np.uint8)
    for step in (0, 2):
        actions = algo.act(obs, step)
        metrics = algo.observe(obs, actions, np.zeros(2, np.float32), obs, np.zeros(2, bool), np.zeros(2, bool), step)
    assert algo.updates == 1 and np.isfinite(metrics["loss/value"])


def test_continuous_actions_are_bounded_and_learned_from_the_raw_draw():
    algo = make_ppo(actions=TORQUE, network=NetworkConfig(hidden_sizes=[8], log_std_init=1.5))
    obs = np.zeros((2, 3), np.float32)
    actions = algo.act(obs, 0)
    assert actions.shape == (2, 1) and actions.dtype == np.float32 and np.abs(actions).max() <= 2.0
    raw = algo._pending[1]
    algo.observe(obs, actions, np.ones(2, np.float32), obs, np.zeros(2, bool), np.zeros(2, bool), 0)
    assert torch.equal(algo.rollout.actions[0], raw)  # the unclipped draw: its log-prob is the stored one
    for k in range(1, 4):
        metrics = _step(algo, 2, 2 * k)
    assert algo.updates == 4 and np.isfinite(metrics["loss/policy"])
    assert np.array_equal(algo.predict(np.zeros((3, 3), np.float32)).shape, (3, 1))


@pytest.mark.parametrize("actions", [ACTIONS, TORQUE], ids=["discrete", "continuous"])
def test_entropy_bonus_alone_raises_the_policy_entropy(actions):
    # zero rewards and values -> zero advantages; only the entropy term moves the actor
    algo = make_ppo(actions=actions, ent_coef=0.5, norm_adv=False, lr=1e-2, anneal_lr=False)
    obs = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    with torch.no_grad():
        algo.net.critic.layers[-1].weight.zero_()
        if actions is ACTIONS:  # start from a peaked policy (the initial one is near uniform, entropy at its max)
            algo.net.actor.layers[-1].bias.copy_(torch.tensor([3.0, 0.0]))

    def entropy():
        with torch.no_grad():
            out, _ = algo.net(torch.as_tensor(obs))
            action, _ = algo.net.head.sample(out)
            return algo.net.head.log_prob_entropy(out, action)[1].mean().item()

    before = entropy()
    for k in range(4):
        acts = algo.act(obs, 2 * k)
        algo.observe(obs, acts, np.zeros(2, np.float32), obs, np.zeros(2, bool), np.zeros(2, bool), 2 * k)
    assert entropy() > before


def test_reward_normalization_scales_by_the_return_std_and_is_saved():
    algo = make_ppo(num_envs=1, rollout_steps=8, normalize_rewards=True, gamma=0.5)
    for k in range(3):
        _step(algo, 1, k, rewards=np.array([10.0], np.float32))
    # discounted returns 10, 15, 17.5 -> the third reward is divided by their std
    std = np.sqrt(np.var([10.0, 15.0, 17.5]) + 1e-8)
    assert algo.rollout.rewards[2, 0].item() == pytest.approx(10.0 / std, rel=1e-5)
    again = make_ppo(num_envs=1, rollout_steps=8, normalize_rewards=True, gamma=0.5)
    again.load_state_dict(algo.state_dict())
    assert again.return_stats.count.item() == 3 and again._discounted_return[0] == pytest.approx(17.5)


def test_observation_statistics_update_after_each_rollout():
    algo = make_ppo(network=NetworkConfig(hidden_sizes=[8], normalize_obs=True))
    for k in range(3):
        _step(algo, 2, 2 * k)
    assert algo.net.obs_norm.count.item() == 0  # frozen while a rollout is collected
    _step(algo, 2, 6)
    assert algo.net.obs_norm.count.item() == 8


@pytest.mark.parametrize("algo_name", ["ppo", "a2c", "reinforce"])
def test_actor_critics_honour_amp_and_compile(algo_name):
    """device.amp (bfloat16 autocast) and device.compile (torch.compile) run the actor-critics'
    acting and update paths too (here on CPU); losses stay float32 and finite."""
    from rlexp.algos.a2c import A2C
    from rlexp.algos.reinforce import Reinforce
    from rlexp.config import A2CConfig, DeviceConfig, ReinforceConfig

    cls, cfg = {"ppo": (PPO, PPOConfig(rollout_steps=4, num_minibatches=2, update_epochs=1)),
                "a2c": (A2C, A2CConfig(rollout_steps=4)),
                "reinforce": (Reinforce, ReinforceConfig())}[algo_name]
    for compute in (DeviceConfig(amp=True), DeviceConfig(compile=True)):
        algo = cls(cfg, OBS, ACTIONS, NetworkConfig(hidden_sizes=[8]), torch.device("cpu"), 0, 2, compute=compute,
                   total_steps=100)
        assert (algo.net_fn is not algo.net) == compute.compile
        rng = np.random.default_rng(0)
        metrics, step = {}, 0
        while not metrics:
            obs = rng.normal(size=(2, 3)).astype(np.float32)
            actions = algo.act(obs, step)
            done = np.array([step % 3 == 2] * 2)
            metrics = algo.observe(obs, actions, np.ones(2, np.float32), obs, done, np.zeros(2, bool), step)
            step += 2
        assert np.isfinite(metrics["loss/policy"]) and algo.updates >= 1
        assert algo.predict(obs).shape == (2,)


@given(clip_value_loss=st.booleans(), ent_coef=st.sampled_from([0.0, 0.01, 0.3]), vf_coef=st.sampled_from([0.25, 0.7]),
       clip=st.sampled_from([0.05, 0.2, 0.5]), n=st.integers(2, 80), activation=st.sampled_from(["tanh", "relu"]),
       hidden=st.lists(st.integers(2, 24), min_size=1, max_size=3), actions=st.integers(2, 5),
       seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_hand_written_gradient_is_autograds(clip_value_loss, ent_coef, vf_coef, clip, n, activation, hidden, actions,
                                            seed):
    """PPO's fast path (categorical policy, MLP actor and critic) gives the reference's
    (:func:`ppo_losses` through autograd) gradient and loss terms over random settings, with
    ratios and values on both sides of the clip range."""
    from rlexp.algos.ppo import ppo_losses

    torch.manual_seed(seed)
    ppo = PPO(PPOConfig(rollout_steps=4, num_minibatches=2, clip_value_loss=clip_value_loss, ent_coef=ent_coef,
                        vf_coef=vf_coef), OBS, gym.spaces.Discrete(actions),
              NetworkConfig(hidden_sizes=hidden, activation=activation), torch.device("cpu"), 0, 2, total_steps=100)
    assert ppo.manual_grad and ppo.update_path == "hand-written"
    obs = torch.randn(n, 3)
    taken = torch.randint(0, actions, (n,))
    with torch.no_grad():
        logits, values = ppo.forward(obs)
        logprob = torch.log_softmax(logits, -1).gather(-1, taken.unsqueeze(-1)).squeeze(-1)
    old_logprob = logprob + 0.4 * torch.randn(n)  # ratios well outside the clip range too
    old_values = values + 0.5 * torch.randn(n)
    adv, returns = torch.randn(n), torch.randn(n)

    out, value = ppo.forward(obs)
    new_logprob, entropies = ppo.net.head.log_prob_entropy(out, taken)
    reference = ppo_losses(new_logprob, entropies, value, old_logprob, adv, returns, old_values, clip, clip_value_loss)
    policy_loss, value_loss, entropy = reference[:3]
    ppo.flat_params.grad.zero_()
    (policy_loss - ent_coef * entropy + vf_coef * value_loss).backward()
    expected = ppo.flat_params.grad.clone()

    ppo.flat_params.grad.fill_(7.0)  # every entry must be written, not accumulated
    manual = ppo._manual_backward(obs, taken, old_logprob, adv, returns, old_values, clip)
    assert torch.allclose(ppo.flat_params.grad, expected, rtol=1e-4, atol=1e-6)
    for ours, theirs in zip(manual, reference):
        assert torch.allclose(ours, theirs.detach(), rtol=1e-6, atol=1e-7)


def test_fast_path_off_uses_autograd():
    """``device.fast_path=off`` takes the reference path. (Whole updates are not compared: the
    two gradients differ in float rounding, which Adam's first steps amplify on entries whose
    gradient is near zero; the property test above compares the gradients themselves.)"""
    from rlexp.config import DeviceConfig

    assert make_ppo().update_path == "hand-written"
    off = PPO(PPOConfig(rollout_steps=4, num_minibatches=2), OBS, ACTIONS, NetworkConfig(hidden_sizes=[8]),
              torch.device("cpu"), 0, 2, compute=DeviceConfig(fast_path="off"), total_steps=100)
    assert not off.manual_grad and off.update_path == "autograd"


def test_shared_trunks_and_continuous_actions_use_autograd():
    assert not make_ppo(network=NetworkConfig(hidden_sizes=[8], shared_trunk=True)).manual_grad
    assert not make_ppo(actions=TORQUE).manual_grad
