"""Episode videos: one env rendered to a playable H.264 mp4.

Independent of the CLI: ``rlexp eval --video`` uses it, and a training loop can call
:func:`record_episode` for periodic videos. Writing goes through ``imageio`` with its
``imageio-ffmpeg`` backend (a bundled ffmpeg binary, no system install needed).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from rlexp.errors import ConfigError, first_line

MIN_FPS = 15  # slower videos look broken in most players


def video_fps(env: gym.Env) -> int:
    """Frames per second for ``env``'s video: its ``render_fps``, default 30, at least 15."""
    fps = (getattr(env, "metadata", None) or {}).get("render_fps") or 30
    return max(int(round(fps)), MIN_FPS)


def even_frame(frame: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 frame padded (edge pixels) to even height and width, as yuv420p needs."""
    frame = np.asarray(frame)
    if frame.ndim == 2:  # grayscale
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"env.render() returned an array of shape {frame.shape}; expected (H, W, 3) RGB")
    frame = frame[:, :, :3]
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def render_env_for_video(env_cfg, seed: int) -> gym.Env:
    """One env of ``env_cfg`` made to render, checked to render (and the mp4 writer to exist)
    before anything is written; the caller closes it.

    Raises:
        ConfigError: no ffmpeg writer, or an env that cannot render rgb_array frames here.
    """
    from rlexp.envs import make_env

    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise ConfigError(
            f"videos need imageio and imageio-ffmpeg ({first_line(err)}); install them: pip install imageio imageio-ffmpeg"
        ) from None
    env = None
    try:
        env = make_env(env_cfg, render_mode="rgb_array")
        env.reset(seed=seed)
        frame = env.render()
    except (gym.error.DependencyNotInstalled, ImportError) as err:
        if env is not None:
            env.close()
        raise ConfigError(f"{env_cfg.id} cannot render videos here: {first_line(err)}") from None
    if frame is None:
        env.close()
        raise ConfigError(f"{env_cfg.id} renders no rgb_array frames; it cannot be recorded")
    return env


class VideoWriter:
    """An mp4 (H.264, yuv420p) written to a temporary file and renamed on :meth:`close`.

    A crash leaves no half-written video at ``path``; :meth:`abort` discards the frames.
    """

    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a unique name beside the target (ffmpeg creates it, with the usual umask permissions)
        self._tmp = self.path.parent / f".{self.path.stem}.{uuid.uuid4().hex[:12]}.tmp.mp4"
        self.frames = 0
        self._writer = imageio.get_writer(
            self._tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,  # frames are padded to even sizes; no rescaling
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],  # playable while streaming (browsers, W&B)
        )

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(even_frame(frame))
        self.frames += 1

    def close(self) -> Path:
        self._writer.close()
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise ValueError(f"no frames to write to {self.path}")
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def record_episode(
    policy: Callable[[np.ndarray], np.ndarray],
    env: gym.Env,
    path: Path,
    seed: int | None,
    max_steps: int | None = None,
    fps: int | None = None,
) -> tuple[float, int]:
    """Play one episode of ``env`` with ``policy`` and write its frames to ``path`` (mp4).

    Args:
        policy: a batch policy (as ``Algorithm.predict``): it gets ``obs[None]`` and its
            first action is taken.
        env: one (non-vector) env made with ``render_mode="rgb_array"``.
        path: the mp4 to write (parent directories are created; an existing file is replaced).
        seed: the reset seed of the episode.
        max_steps: stop after this many env steps even if the episode goes on.
        fps: frames per second; default from ``env.metadata["render_fps"]`` (at least 15).

    Returns:
        (episode_return, num_frames): the undiscounted return and the frames written (the
        reset frame plus one per step).
    """
    if env.render_mode != "rgb_array":
        raise ValueError(f"record_episode needs an env made with render_mode='rgb_array', got {env.render_mode!r}")
    writer = VideoWriter(path, fps or video_fps(env))
    try:
        obs, _ = env.reset(seed=seed)
        writer.append(env.render())
        episode_return, steps = 0.0, 0
        while max_steps is None or steps < max_steps:
            action = np.asarray(policy(np.asarray(obs)[None]))[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            episode_return += float(reward)
            steps += 1
            writer.append(env.render())
            if terminated or truncated:
                break
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return episode_return, writer.frames
