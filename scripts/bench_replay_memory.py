"""Resident memory and sampling speed of FrameReplayBuffer with Atari-sized frames.

Fills a buffer of capacity N with N transitions of (4, 84, 84) uint8 frames from one env
(zero-padded reset stacks, episodes of about 1000 steps), measures how much the process's
resident memory (VmRSS) grew, projects it to a 1M-transition buffer against the 7.1e9-byte
budget, and compares with a buffer that stores obs and next_obs stacks per transition and
with Stable-Baselines3's ``optimize_memory_usage`` layout (one stack per transition). Then
times ``sample(32)``.

    python scripts/bench_replay_memory.py                        # N = 100_000 (~1 minute of CPU at most)
    python scripts/bench_replay_memory.py --transitions 1000000  # the real thing: needs ~7.1 GB free

Linux only (reads /proc/self/status).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rlexp.buffers import FrameReplayBuffer

STACK, H, W = 4, 84, 84
FRAME = H * W
BUDGET_1M = 7.1e9


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError("no VmRSS in /proc/self/status")


def frame_stream(rng: np.random.Generator, episode_steps: int) -> np.ndarray:
    """Zero padding then random frames, long enough for the longest episode.

    Every episode replays it: obs and next_obs are views of it, so filling allocates nothing
    that would blur the memory measurement.
    """
    stream = np.zeros((STACK - 1 + int(1.1 * episode_steps) + 1, H, W), dtype=np.uint8)
    stream[STACK - 1 :] = rng.integers(0, 256, stream[STACK - 1 :].shape, dtype=np.uint8)
    return stream


def fill(buf: FrameReplayBuffer, n: int, rng: np.random.Generator, stream: np.ndarray, episode_steps: int) -> float:
    """Add ``n`` transitions, episodes of 0.9x to 1.1x ``episode_steps``; returns seconds per ``add``."""
    low, high = int(0.9 * episode_steps), int(1.1 * episode_steps)
    action, reward, no, yes = np.zeros(1, np.int64), np.zeros(1, np.float32), np.zeros(1, bool), np.ones(1, bool)
    t, length = 0, int(rng.integers(low, high + 1))
    start = time.perf_counter()
    for _ in range(n):
        end = t == length - 1
        flag = yes if end else no
        buf.add(stream[None, t : t + STACK], action, reward, stream[None, t + 1 : t + 1 + STACK], flag, flag)
        t += 1
        if end:
            t, length = 0, int(rng.integers(low, high + 1))
    return (time.perf_counter() - start) / n


def sample_rate(buf: FrameReplayBuffer, batch_size: int, seconds: float) -> float:
    """Batches per second."""
    for _ in range(10):
        buf.sample(batch_size)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            buf.sample(batch_size)
        count += 50
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=int, default=100_000, help="buffer capacity and transitions added")
    parser.add_argument("--episode-steps", type=int, default=1000, help="mean episode length (uniform within +-10%%)")
    parser.add_argument("--sample-seconds", type=float, default=3.0)
    args = parser.parse_args()
    n = args.transitions
    rng = np.random.default_rng(0)
    stream = frame_stream(rng, args.episode_steps)
    # warm up on a small buffer: one-time allocations (lazy imports, numpy and torch
    # internals) must not count as per-transition memory
    warm = FrameReplayBuffer(64, (STACK, H, W))
    fill(warm, 200, rng, stream, 50)
    warm.sample(32)
    del warm

    before = rss_bytes()
    buf = FrameReplayBuffer(n, (STACK, H, W), seed=0)
    add_s = fill(buf, n, rng, stream, args.episode_steps)
    grown = rss_bytes() - before
    per = grown / buf.capacity
    batches = sample_rate(buf, 32, args.sample_seconds)

    rows = [
        ("FrameReplayBuffer (measured RSS growth)", per),
        ("  allocated (buffer.nbytes)", buf.nbytes / buf.capacity),
        ("naive: obs + next_obs stacks", 2 * STACK * FRAME),
        ("SB3 optimize_memory_usage: one stack", STACK * FRAME),
    ]
    print(f"{n:,} transitions of {STACK}x{H}x{W} uint8, 1 env, episodes of ~{args.episode_steps} steps; "
          f"{len(buf):,} valid after the fill (each episode start in the ring takes {STACK} slots)")
    print(f"{'':42}{'bytes/transition':>18}{'at 1M transitions':>20}")
    for name, b in rows:
        print(f"{name:42}{b:>18,.0f}{b * 1e6 / 1e9:>17.3f} GB")
    # the larger of the two: RSS can undercount when freed heap memory gets reused
    worst = max(per, buf.nbytes / buf.capacity) * 1e6
    verdict = "within" if worst < BUDGET_1M else "OVER"
    print(f"projected 1M buffer: {worst / 1e9:.3f} GB (larger of measured and allocated), {verdict} the "
          f"{BUDGET_1M / 1e9} GB budget (frames alone: {FRAME * 1e6 / 1e9:.3f} GB)")
    print(f"add(): {add_s * 1e6:.1f} us per step")
    print(f"sample(32): {batches:,.0f} batches/s ({1e6 / batches:.0f} us each), "
          f"{batches * 32 * 2 * STACK:,.0f} frames/s into obs + next_obs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
