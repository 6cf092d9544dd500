"""Experience storage: replay for off-policy learners, rollouts for on-policy ones."""

from rlexp.buffers.frames import FrameReplayBuffer
from rlexp.buffers.replay import ReplayBatch, ReplayBuffer
from rlexp.buffers.rollout import RolloutBuffer

__all__ = ["FrameReplayBuffer", "ReplayBatch", "ReplayBuffer", "RolloutBuffer"]
