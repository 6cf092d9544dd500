"""Experience storage: replay for off-policy learners."""

from rlexp.buffers.replay import ReplayBatch, ReplayBuffer

__all__ = ["ReplayBatch", "ReplayBuffer"]
