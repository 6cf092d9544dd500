"""Uniform replay for stacked-frame observations (Atari DQN) that stores every frame once.

A stacked observation ``(stack, H, W)`` shares ``stack - 1`` frames with the next one, and a
transition's ``next_obs`` shares them with its ``obs``. Storing both stacks per transition
costs ``2 * stack`` frames; this buffer stores one frame per transition (the newest frame of
``next_obs``) plus the ``stack`` frames of each episode's reset observation, and rebuilds the
stacks at sample time with one vectorized gather.

Layout: every env owns one column of a frame ring, ``frames[slot, env]``. An env's column is
its frame stream: at each episode start the reset stack's frames, then one frame per step.
A transition lives at the slot of its newest ``next_obs`` frame ``p``; its ``obs`` is slots
``p - stack .. p - 1`` and its ``next_obs`` slots ``p - stack + 1 .. p`` of the same column.
Because the reset frames are written into the stream, a window never reaches back past its
episode's start, and whatever padding the env used at reset comes back byte for byte.

Validity lives in one byte per slot, kept in host memory: set when a transition is written
(never for reset-frame slots) and cleared, as the ring wraps, for the ``stack`` slots just
ahead of the write position (the transitions whose windows reach a frame just overwritten).
Sampling draws slots uniformly and redraws the invalid ones (a few per episode), which is
uniform over the valid transitions. Prioritized sampling keeps every invalid slot at priority
0 instead, so it never draws one.

n-step returns are made at sample time: a transition's successors are the next slots of its
env's column, up to the first that ended the episode (or lost a life), and never past the
newest slot written.
"""

from __future__ import annotations

import numpy as np
import torch

from rlexp.buffers.prioritized import Priorities, n_step_returns
from rlexp.buffers.replay import ReplayBatch


class FrameReplayBuffer:
    """A ring buffer of stacked-frame transitions that stores each frame once.

    A drop-in alternative to :class:`~rlexp.buffers.replay.ReplayBuffer` for observations
    of shape ``(stack, H, W)``; about ``2 * stack`` times smaller. Storage (frames, actions,
    rewards, terminal flags) lives on ``device``; the per-slot bookkeeping and the sampling
    generator live on the host, so neither ``add`` nor ``sample`` waits on the device.

    Capacity: the ring has ``ceil(capacity / num_envs) + stack`` slots per env, so an env
    holds ``ceil(capacity / num_envs)`` transitions of one long episode; every further
    episode start inside the ring takes ``stack`` slots for its reset frames (0.4% of the
    ring with 1000-step episodes, stack 4). Memory stays fixed whatever the episode lengths.

    Args:
        capacity: transitions held across all envs (rounded up to a multiple of ``num_envs``).
        obs_shape: ``(stack, H, W)``.
        obs_dtype: frame dtype (uint8 for Atari).
        device: where the storage lives.
        seed: seeds the sampling generator.
        num_envs: parallel envs; row ``i`` of every ``add`` belongs to env ``i``.
        validate: check the caller's contract (see :meth:`add`) on every ``add``; slower,
            for tests and debugging.
        n_step: transitions folded into each sampled return (1: the stored transition).
        gamma: the discount of the n-step returns.
        priority_exponent: None samples uniformly; a number samples by priority (see
            :class:`~rlexp.buffers.prioritized.Priorities`).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type = np.uint8,
        device: torch.device | str = "cpu",
        seed: int = 0,
        num_envs: int = 1,
        validate: bool = False,
        n_step: int = 1,
        gamma: float = 0.99,
        priority_exponent: float | None = None,
    ):
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        if len(obs_shape) != 3:
            raise ValueError(f"obs_shape must be 3-D (stack, height, width), got {tuple(obs_shape)}")
        if num_envs <= 0:
            raise ValueError(f"num_envs must be > 0, got {num_envs}")
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.stack = self.obs_shape[0]
        self.num_envs = int(num_envs)
        self.capacity = -(-int(capacity) // self.num_envs) * self.num_envs
        # + stack: room for the first episode's reset frames, so one long episode fills
        # exactly `capacity` transitions
        self.slots = self.capacity // self.num_envs + self.stack
        self.device = torch.device(device)
        self.validate = validate
        torch_dtype = torch.from_numpy(np.zeros(0, dtype=obs_dtype)).dtype
        ring, kw = (self.slots, self.num_envs), {"device": self.device}
        # torch.empty, not zeros: pages become resident only when first written
        self.frames = torch.empty((*ring, *self.obs_shape[1:]), dtype=torch_dtype, **kw)
        self.actions = torch.empty(ring, dtype=torch.int32, **kw)
        self.rewards = torch.empty(ring, dtype=torch.float32, **kw)
        self.terminated = torch.empty(ring, dtype=torch.uint8, **kw)
        # 1 where the env's episode ended at that step (terminated or truncated): an n-step return stops there
        self.episode_end = torch.empty(ring, dtype=torch.uint8, **kw)
        self._store = (self.frames, self.actions, self.rewards, self.terminated, self.episode_end)
        # numpy views for cheap writes when the storage is host memory
        self._np = tuple(t.numpy() for t in self._store) if self.device.type == "cpu" else None
        # host bookkeeping: 1 where the slot holds a transition whose frames are all intact
        self.valid = torch.zeros(ring, dtype=torch.uint8)
        self._valid_np = self.valid.numpy()
        self._written = np.zeros(self.num_envs, dtype=np.int64)  # slots written per env, ever
        self._fresh = np.ones(self.num_envs, dtype=bool)  # next obs is a reset stack
        self._count = 0  # valid transitions
        self._envs = np.arange(self.num_envs)
        self._offsets = np.arange(-self.stack, 1)  # a transition's window, oldest first
        self._ahead = np.arange(self.stack + 1)
        # host generator: the rejection step reads the host bookkeeping (no device sync)
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self.n_step, self.gamma = int(n_step), float(gamma)
        self._steps = torch.arange(self.n_step)
        # host, as the validity bytes: a slot's priority is 0 exactly where it is invalid
        self.priorities = None if priority_exponent is None else Priorities(self.slots * self.num_envs, priority_exponent)
        self._written_now = np.tile(self._ahead == 0, (self.num_envs, 1))  # in each env's ahead window: the new slot

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Bytes allocated for storage and bookkeeping (resident once written)."""
        tree = 0 if self.priorities is None else self.priorities.tree.nodes.nbytes
        return sum(t.nbytes for t in self._store) + self.valid.nbytes + tree

    # ------------------------------------------------------------------ adding

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        episode_end: np.ndarray | None = None,
    ) -> None:
        """Add one transition per env (arrays with a leading ``num_envs`` axis).

        Contract, per env: ``obs`` equals that env's previous ``next_obs`` unless its
        previous transition had ``episode_end=True`` (or this is its first ``add``), in which
        case ``obs`` is a fresh reset stack, stored as given (any padding). ``next_obs`` is
        ``obs`` shifted by one frame plus the new frame (frame stacking), and for a truncated
        episode it is the real final observation. Only ``next_obs[:, -1]`` and the frames of
        reset stacks are stored, so a caller that breaks this contract gets wrong stacks back;
        ``validate=True`` checks it.

        Args:
            obs: ``(num_envs, stack, H, W)`` observations the actions were taken in.
            actions: ``(num_envs,)`` integer actions.
            rewards: ``(num_envs,)`` rewards.
            next_obs: ``(num_envs, stack, H, W)`` the observations that followed.
            terminated: ``(num_envs,)`` 1/True where the learner must not bootstrap. May be
                set without ``episode_end`` (an Atari life loss): the frame stream goes on.
            episode_end: ``(num_envs,)`` True where the env's episode ended at this step
                (terminated or truncated, as the env reported); None means all False.
        """
        obs, next_obs, ends = self._checked(obs, next_obs, episode_end)
        envs, written, stack = self._envs, self._written, self.stack
        if self._fresh.any():
            # episode starts: the reset stack's frames open the env's stream. Their slots are
            # already invalid: every add leaves the `stack` slots after its write invalid.
            r = np.flatnonzero(self._fresh)
            slots = (written[r, None] + self._ahead[:stack]) % self.slots
            self._write(((slots, r[:, None]), obs[r]))
            written[r] += stack
        slot = written % self.slots
        # the slot written now and the `stack` after it: the old transitions whose windows
        # include a frame overwritten now or by the reset frames above
        ahead = (written[:, None] + self._ahead) % self.slots
        self._invalidate(ahead, envs[:, None])
        at = (slot, envs)
        self._write((at, next_obs[:, -1]), (at, actions), (at, rewards), (at, terminated), (at, ends))
        self._valid_np[at] = 1
        if self.priorities is not None:  # the new transitions at the top priority, the evicted at 0
            self.priorities.set(ahead * self.num_envs + envs[:, None], self._written_now)
        self._count += self.num_envs
        written += 1
        self._fresh = ends

    def _checked(self, obs, next_obs, episode_end) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs, next_obs, episode ends) as arrays of the shapes :meth:`add` takes, its contract
        checked when ``validate``."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        expected = (self.num_envs, *self.obs_shape)
        if obs.shape != expected or next_obs.shape != expected:
            raise ValueError(f"obs and next_obs must have shape {expected}, got {obs.shape} and {next_obs.shape}")
        if episode_end is None:
            ends = np.zeros(self.num_envs, dtype=bool)
        else:
            ends = np.array(episode_end, dtype=bool).reshape(-1)
            if ends.shape != (self.num_envs,):
                raise ValueError(f"episode_end must have shape ({self.num_envs},), got {np.shape(episode_end)}")
        if self.validate:
            self._check_contract(obs, next_obs)
        return obs, next_obs, ends

    def _invalidate(self, slots: np.ndarray, envs: np.ndarray) -> None:
        # no slot repeats within one call (at most stack + 1 <= self.slots consecutive slots)
        self._count -= int(self._valid_np[slots, envs].sum())
        self._valid_np[slots, envs] = 0

    def _write(self, *writes: tuple[tuple[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Store ``value`` at ``index`` (slot, env arrays) in frames, actions, rewards, terminated, episode_end, in order."""
        if self._np is not None:
            for store, (index, value) in zip(self._np, writes):
                store[index] = value
            return
        for store, (index, value) in zip(self._store, writes):
            index = tuple(torch.as_tensor(i, device=self.device) for i in index)
            store[index] = torch.as_tensor(np.asarray(value), device=self.device).to(store.dtype)

    def _check_contract(self, obs: np.ndarray, next_obs: np.ndarray) -> None:
        if not np.array_equal(next_obs[:, :-1], obs[:, 1:]):
            raise ValueError("next_obs must be obs shifted by one frame plus a new one (next_obs[:, :-1] == obs[:, 1:])")
        cont = np.flatnonzero(~self._fresh)
        if cont.size:
            slots = (self._written[cont, None] + np.arange(-self.stack, 0)) % self.slots
            index = (torch.as_tensor(slots, device=self.device), torch.as_tensor(cont[:, None], device=self.device))
            previous = self.frames[index].cpu().numpy()
            bad = [int(e) for e, ok in zip(cont, (previous == obs[cont]).reshape(cont.size, -1).all(1)) if not ok]
            if bad:
                raise ValueError(
                    f"obs of env(s) {bad} differs from their previous next_obs, but their previous "
                    "transition had no episode_end"
                )

    # ------------------------------------------------------------------ sampling

    def sample(self, batch_size: int, num_batches: int | None = None, importance_exponent: float = 1.0) -> ReplayBatch:
        """Sample with replacement from the valid transitions: uniformly, or by priority.

        Args:
            batch_size: transitions per batch.
            num_batches: if given, sample that many batches at once; fields get shape
                ``(num_batches, batch_size, ...)``.
            importance_exponent: beta of the importance-sampling weights (prioritized only).
        """
        if self._count == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        if self.priorities is not None:
            idx, weights = self.priorities.sample(shape, self._count, self.generator, importance_exponent)
            batch = self._gather(idx.numpy())
            return batch._replace(weights=weights.to(self.device), indices=idx.to(self.device))
        # slots past every env's write position were never written: leave them out
        domain = min(int(self._written.max()), self.slots) * self.num_envs
        valid = self._valid_np.reshape(-1)
        idx = torch.randint(0, domain, shape, generator=self.generator).numpy()
        bad = np.flatnonzero(valid[idx] == 0)
        while bad.size:  # reset-frame and evicted slots: a few per episode, so rarely loops
            redraw = torch.randint(0, domain, (bad.size,), generator=self.generator).numpy()
            idx.flat[bad] = redraw
            bad = bad[valid[redraw] == 0]
        return self._gather(idx)

    def _gather(self, idx: np.ndarray) -> ReplayBatch:
        """The transitions at flat slot indices ``idx`` (``slot * num_envs + env``, any shape)."""
        idx = np.asarray(idx, dtype=np.int64)
        n = self.num_envs
        slot, env = np.divmod(idx, n)
        # index arithmetic on the host (numpy: a few microseconds), gathers where the storage is
        window = ((slot[..., None] + self._offsets) % self.slots) * n + env[..., None]
        # obs and next_obs in one gather: one output allocation instead of two (two large
        # blocks alive at once make glibc hand pages back and fault them in on every call)
        if self.n_step == 1:
            stacks = self._take(self.frames.view(-1, *self.obs_shape[1:]), np.stack([window[..., :-1], window[..., 1:]]))
            return ReplayBatch(
                obs=stacks[0],
                actions=self._take(self.actions.view(-1), idx).long(),
                rewards=self._take(self.rewards.view(-1), idx),
                next_obs=stacks[1],
                terminated=self._take(self.terminated.view(-1), idx).float(),
            )
        # the successors: the next slots of the same column, as far as the newest one written
        steps = self._steps.numpy()
        age = (self._written[env] - 1 - slot) % self.slots
        available = torch.from_numpy(steps <= age[..., None])
        successors = ((slot[..., None] + steps) % self.slots) * n + env[..., None]
        stops = (self._take(self.terminated.view(-1), successors) | self._take(self.episode_end.view(-1), successors)).cpu()
        returns, last, discounts = n_step_returns(self._take(self.rewards.view(-1), successors).cpu(), stops.bool(),
                                                  available, self.gamma)
        final = np.take_along_axis(slot[..., None] + steps, last.numpy()[..., None], -1)[..., 0]
        final_window = ((final[..., None] + self._offsets[1:]) % self.slots) * n + env[..., None]
        stacks = self._take(self.frames.view(-1, *self.obs_shape[1:]), np.stack([window[..., :-1], final_window]))
        terminated = self._take(self.terminated.view(-1), final % self.slots * n + env)
        return ReplayBatch(
            obs=stacks[0],
            actions=self._take(self.actions.view(-1), idx).long(),
            rewards=returns.to(self.device),
            next_obs=stacks[1],
            terminated=terminated.float(),
            discounts=discounts.to(self.device),
        )

    def _take(self, store: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        """``store[idx]`` along the first axis, shaped ``(*idx.shape, *store.shape[1:])``."""
        flat = idx.reshape(-1)
        if self._np is not None:
            # numpy's take: a plain single-threaded copy, where torch's gathers spin up
            # intra-op threads (and stall for milliseconds when the cores are busy)
            out = torch.from_numpy(np.take(store.numpy(), flat, axis=0))
        else:
            out = store.index_select(0, torch.as_tensor(flat, device=self.device))
        return out.view(*idx.shape, *store.shape[1:])

    def update_priorities(self, indices: torch.Tensor, errors: torch.Tensor) -> None:
        """Hand back the sampled transitions' errors (prioritized replay)."""
        self.priorities.update(indices.cpu(), errors)

    def _valid_indices(self) -> np.ndarray:
        """Flat indices of every valid transition (for tests)."""
        return np.flatnonzero(self._valid_np)

    # ------------------------------------------------------------------ checkpointing

    def state_dict(self) -> dict:
        """Contents, cursors and generator state (only the slots written so far).

        Tensors and plain values only, so ``torch.load(..., weights_only=True)`` reads it.
        """
        k = min(int(self._written.max()), self.slots)
        return {
            "slots": self.slots,
            "num_envs": self.num_envs,
            "obs_shape": self.obs_shape,
            "written": torch.from_numpy(self._written.copy()),
            "fresh": torch.from_numpy(self._fresh.copy()),
            "count": self._count,
            "valid": self.valid[:k].clone(),
            "store": [t[:k].cpu().clone() for t in self._store],
            "generator": self.generator.get_state(),
            **({} if self.priorities is None else {"priorities": self.priorities.state_dict()}),
        }

    def load_state_dict(self, state: dict) -> None:
        layout = (state["slots"], state["num_envs"], tuple(state["obs_shape"]))
        if layout != (self.slots, self.num_envs, self.obs_shape):
            raise ValueError(
                f"state is for (slots, num_envs, obs_shape) = {layout}, this buffer has "
                f"{(self.slots, self.num_envs, self.obs_shape)}"
            )
        k = len(state["valid"])
        for store, saved in zip(self._store, state["store"]):
            store[:k] = saved.to(self.device)
        self.valid.zero_()
        self.valid[:k] = state["valid"]
        self._written = torch.as_tensor(state["written"]).numpy().astype(np.int64)
        self._fresh = torch.as_tensor(state["fresh"]).numpy().astype(bool)
        self._count = int(state["count"])
        self.generator.set_state(state["generator"])
        if self.priorities is not None:
            self.priorities.load_state_dict(state["priorities"])
