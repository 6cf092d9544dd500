import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, TanhTransform

from rlexp.config import ConfigError
from rlexp.networks import CategoricalHead, GaussianHead, policy_head

BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def test_categorical_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    head = CategoricalHead(4)
    action, logprob = head.sample(logits)
    reference = Categorical(logits=logits)
    assert torch.allclose(logprob, reference.log_prob(action))
    log_prob, entropy = head.log_prob_entropy(logits, action)
    assert torch.allclose(log_prob, reference.log_prob(action))
    assert torch.allclose(entropy, reference.entropy())
    assert torch.equal(head.mode(logits), logits.argmax(1))


def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    torch.manual_seed(0)
    head = GaussianHead(BOX, log_std_init=-0.5, bound="clip")
    with torch.no_grad():
        head.log_std.copy_(torch.tensor([-0.5, 0.3]))
    mean = torch.randn(6, 2)
    action, logprob = head.sample(mean)
    reference = Normal(mean, head.log_std.exp())
    assert torch.allclose(logprob, reference.log_prob(action).sum(-1), atol=1e-5)
    log_prob, entropy = head.log_prob_entropy(mean, action)
    assert torch.allclose(log_prob, reference.log_prob(action).sum(-1), atol=1e-5)
    assert torch.allclose(entropy, reference.entropy().sum(-1), atol=1e-6)


def test_gaussian_clips_its_draw_to_the_bounds_but_keeps_the_raw_draw_for_the_log_prob():
    head = GaussianHead(BOX, 0.0, "clip")
    raw = torch.tensor([[-5.0, 0.5], [1.0, 3.0]])
    assert torch.equal(head.env_action(raw), torch.tensor([[-2.0, 0.5], [1.0, 1.0]]))
    assert torch.equal(head.mode(raw), raw)


def test_squashed_gaussian_log_prob_matches_a_tanh_affine_transformed_normal():
    torch.manual_seed(1)
    head = GaussianHead(BOX, log_std_init=0.2, bound="squash")
    mean = torch.randn(8, 2)
    raw, logprob = head.sample(mean)
    bounded = head.env_action(raw)
    assert ((bounded >= head.low) & (bounded <= head.high)).all()
    center, half = (head.high + head.low) / 2, (head.high - head.low) / 2
    reference = TransformedDistribution(
        Normal(mean, head.log_std.exp()), [TanhTransform(), AffineTransform(center, half)]
    )
    assert torch.allclose(logprob, reference.log_prob(bounded).sum(-1), atol=1e-4)
    # large draws (tanh saturated) stay finite
    far = torch.full((1, 2), 30.0)
    assert torch.isfinite(head.log_prob_entropy(mean[:1], far)[0]).all()


def test_entropy_signs():
    # a discrete entropy is >= 0, largest for the uniform policy; a Gaussian's rises with its log std
    head = CategoricalHead(4)
    uniform = head.log_prob_entropy(torch.zeros(1, 4), torch.zeros(1, dtype=torch.int64))[1]
    peaked = head.log_prob_entropy(torch.tensor([[9.0, 0, 0, 0]]), torch.zeros(1, dtype=torch.int64))[1]
    assert uniform.item() == pytest.approx(np.log(4), rel=1e-6) and 0 <= peaked.item() < uniform.item()
    gaussian = GaussianHead(BOX, 0.0, "clip")
    entropy = gaussian.log_prob_entropy(torch.zeros(1, 2), torch.zeros(1, 2))[1].sum()
    entropy.backward()
    assert (gaussian.log_std.grad > 0).all()  # maximizing entropy widens the Gaussian


def test_policy_head_picks_by_action_space_and_refuses_the_rest():
    assert isinstance(policy_head(gym.spaces.Discrete(3), 0.0, "clip"), CategoricalHead)
    head = policy_head(gym.spaces.Box(-1, 1, (2, 3), np.float32), 0.0, "clip")
    assert isinstance(head, GaussianHead) and head.num_outputs == 6
    assert head.env_action(torch.zeros(4, 6)).shape == (4, 2, 3)  # back in the env's action shape
    with pytest.raises(ConfigError, match="finite bounds"):
        policy_head(gym.spaces.Box(-np.inf, np.inf, (1,)), 0.0, "clip")
    with pytest.raises(ConfigError, match="MultiBinary"):
        policy_head(gym.spaces.MultiBinary(3), 0.0, "clip")
