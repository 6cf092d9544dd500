"""Experience storage: replay for off-policy learners."""

from rlexp.buffers.frames import FrameReplayBuffer
from rlexp.buffers.replay import ReplayBatch, ReplayBuffer

__all__ = ["FrameReplayBuffer", "ReplayBatch", "ReplayBuffer"]
