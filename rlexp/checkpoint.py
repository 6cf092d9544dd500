"""Checkpoints that cannot be half-written, and that say when they are damaged.

Layout of ``RUN_DIR/checkpoints/``:

- ``step_<N>.pt``: everything a resume needs at agent step N except the buffers (networks,
  optimizers, counters, RNG states, the loop's bookkeeping, the env action log);
- ``step_<N>.buffers.pt``: the replay buffer or partial rollout (``checkpoint_replay``), for
  the newest checkpoint only (a replay can be gigabytes; older checkpoints are fallbacks);
- ``best.pt``: the networks at the best evaluation so far;
- ``latest.pt``: a symlink to the newest ``step_<N>.pt``;
- ``manifest.json``: the kept checkpoints, newest last, with a SHA-256 and size per file.

Each file is written to a temporary name, fsynced, then renamed; the manifest is rewritten
the same way only after its files are in place, so a kill at any moment leaves the previous
checkpoint listed and intact. Loading checks the checksums and falls back to the newest
good checkpoint, warning about each bad file. Files are read with ``weights_only=True``:
tensors and plain data only, no code runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from rlexp.errors import first_line, warn
from rlexp.faults import fault

BEST = "best.pt"
LATEST = "latest.pt"  # a symlink to the newest step_<N>.pt
MANIFEST = "manifest.json"
FORMAT = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


class CheckpointError(Exception):
    """A checkpoint could not be written (one line; the previous checkpoint is intact)."""


class _HashingWriter:
    """A binary file wrapper that hashes what it writes (no second read of a large file)."""

    def __init__(self, f):
        self._f, self.sha256, self.bytes = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Any], Any], fault_point: str | None = None) -> dict[str, Any]:
    """``write(f)`` to a binary file object for ``path``, through a temporary file in the same
    directory that is fsynced, then renamed: ``path`` is the old file or the whole new one,
    never half of it. ``fault_point``: a ``RLEXP_FAULT`` kill point after the bytes are written.

    Returns:
        ``{"sha256": hex digest, "bytes": size}`` of the written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            writer = _HashingWriter(f)
            write(writer)
            if fault_point:
                fault(fault_point)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; these are normal files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return {"sha256": writer.sha256.hexdigest(), "bytes": writer.bytes}


def save_atomic(obj: Any, path: Path) -> dict[str, Any]:
    """``torch.save`` to ``path`` atomically (:func:`atomic_write`); its checksum and size."""
    return atomic_write(path, lambda f: torch.save(obj, f), fault_point="checkpoint_write")


def write_json_atomic(data: Any, path: Path) -> None:
    """JSON to ``path`` atomically (:func:`atomic_write`)."""
    text = json.dumps(data, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file without executing code from it (``weights_only=True``)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def step_name(step: int) -> str:
    return f"step_{step:010d}.pt"


def buffers_name(step: int) -> str:
    return f"step_{step:010d}.buffers.pt"


@dataclass
class Entry:
    """One checkpoint in the manifest: its agent step and ``{file name: {sha256, bytes}}``."""

    step: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def main(self) -> str:
        return step_name(self.step)


class CheckpointStore:
    """The checkpoints of one run directory: save (atomic, checksummed, last ``keep_last``
    kept), find the newest good one, and ``best.pt``."""

    def __init__(self, directory: Path, keep_last: int = 3):
        self.dir = Path(directory)
        self.keep_last = keep_last  # 0 keeps every checkpoint

    # ------------------------------------------------------------------ manifest

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when it is missing or unreadable (then the files are scanned)."""
        path = self.dir / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
                raise ValueError("no checkpoint list")
            return data
        except (ValueError, OSError) as err:
            warn(f"{path} is damaged ({err}); looking for checkpoints by file name instead")
            return None

    def entries(self) -> list[Entry]:
        """Kept checkpoints, oldest first (from the manifest, else from the step_<N>.pt names)."""
        manifest = self.read_manifest()
        if manifest is not None:
            return [Entry(int(e["step"]), dict(e["files"])) for e in manifest["checkpoints"]]
        out = []
        for p in sorted(self.dir.glob("step_*.pt")):
            stem = p.name.removeprefix("step_").removesuffix(".pt")
            if stem.isdigit():
                out.append(Entry(int(stem), {p.name: {}}))
        return out

    def _write_manifest(self, entries: list[Entry], best: dict[str, Any] | None) -> None:
        data = {"format": FORMAT, "checkpoints": [{"step": e.step, "files": e.files} for e in entries]}
        if best is not None:
            data["best"] = best
        write_json_atomic(data, self.dir / MANIFEST)

    def _best_record(self) -> dict[str, Any] | None:
        manifest = self.read_manifest() if (self.dir / MANIFEST).is_file() else None
        return manifest.get("best") if manifest else None

    # ------------------------------------------------------------------ saving

    def save(self, step: int, state: dict[str, Any], buffers: dict[str, Any] | None = None) -> Path:
        """Write the checkpoint of ``step`` and list it in the manifest; drop the ones beyond ``keep_last``.

        Raises:
            CheckpointError: a write failed (e.g. a full disk); this checkpoint's files are
                removed and the manifest still lists the previous ones, intact.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        entry = Entry(step)
        written: list[Path] = []
        try:
            if buffers is not None:
                path = self.dir / buffers_name(step)
                entry.files[path.name] = save_atomic(buffers, path)
                written.append(path)
            path = self.dir / entry.main
            entry.files[path.name] = save_atomic(state, path)
            written.append(path)
            entries = [e for e in self.entries() if e.step != step] + [entry]
            entries.sort(key=lambda e: e.step)
            dropped = entries[:-self.keep_last] if self.keep_last > 0 else []
            kept = entries[len(dropped):]
            # buffers (an Atari replay is gigabytes) stay with the newest checkpoint only: the
            # older ones are fallbacks for a damaged newest one, and resume from networks and state
            stale = [name for e in kept if e is not entry and buffers is not None
                     for name in list(e.files) if name == buffers_name(e.step)]
            for e in kept:
                if e is not entry and buffers is not None:
                    e.files.pop(buffers_name(e.step), None)
            self._write_manifest(kept, self._best_record())
        except OSError as err:
            for path in written:
                path.unlink(missing_ok=True)
            previous = [e.step for e in self.entries() if e.step != step]
            intact = f"the previous checkpoint (step {previous[-1]}) is intact" if previous else "no earlier checkpoint exists"
            raise CheckpointError(f"checkpoint at step {step} failed: {err.strerror or err} "
                                  f"({self.dir}); {intact}") from None
        self._link_latest(kept[-1].main)
        for old in dropped:
            for name in old.files:
                (self.dir / name).unlink(missing_ok=True)
        for name in stale:
            (self.dir / name).unlink(missing_ok=True)
        return self.dir / entry.main

    def _link_latest(self, name: str) -> None:
        """``latest.pt`` -> the newest checkpoint, replaced atomically (a convenience for tools
        and people; rlexp itself reads the manifest)."""
        link = self.dir / LATEST
        tmp = self.dir / f".{LATEST}.{os.getpid()}.tmp"
        try:
            tmp.unlink(missing_ok=True)
            os.symlink(name, tmp)
            os.replace(tmp, link)
        except OSError:  # a filesystem without symlinks: the manifest still says which is newest
            tmp.unlink(missing_ok=True)

    def save_best(self, step: int, state: dict[str, Any]) -> Path:
        """Write ``best.pt`` (the networks at the best evaluation so far) and record it in the manifest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / BEST
        try:
            record = save_atomic(state, path)
            manifest = self.read_manifest() if (self.dir / MANIFEST).is_file() else None
            entries = [Entry(int(e["step"]), dict(e["files"])) for e in manifest["checkpoints"]] if manifest else []
            self._write_manifest(entries, {"step": step, "files": {BEST: record}})
        except OSError as err:
            raise CheckpointError(f"best checkpoint at step {step} failed: {err.strerror or err} ({self.dir}); "
                                  "the previous best.pt is intact") from None
        return path

    # ------------------------------------------------------------------ loading

    def verify(self, entry: Entry) -> str | None:
        """None when every file of ``entry`` exists with its recorded checksum, else what is wrong."""
        for name, record in entry.files.items():
            path = self.dir / name
            if not path.is_file():
                return f"{path} is missing"
            if record and path.stat().st_size != record.get("bytes", path.stat().st_size):
                return f"{path} is truncated ({path.stat().st_size} of {record['bytes']} bytes)"
            if record and file_sha256(path) != record.get("sha256"):
                return f"{path} is corrupted (checksum mismatch)"
        return None

    def latest(self, need_buffers: bool = False) -> tuple[Entry, dict[str, Any], dict[str, Any] | None] | None:
        """The newest checkpoint that verifies and loads: (entry, state, buffers or None).

        A bad one (missing, truncated, corrupted, unloadable) is named in a warning and the
        one before it is tried. None when no good checkpoint exists.
        """
        for entry in reversed(self.entries()):
            problem = self.verify(entry)
            state = buffers = None
            if problem is None:
                try:
                    state = load_checkpoint(self.dir / entry.main)
                    name = buffers_name(entry.step)
                    if need_buffers and (self.dir / name).is_file():
                        buffers = load_checkpoint(self.dir / name)
                except Exception as err:  # noqa: BLE001 - zip, EOF, unpickling errors alike
                    problem = f"{self.dir / entry.main} cannot be loaded ({first_line(err) or type(err).__name__})"
            if problem is not None:
                warn(f"{problem}; using the checkpoint before it")
                continue
            return entry, state, buffers
        return None

    def remove_strays(self) -> list[Path]:
        """Delete what a killed write left behind: temporary files and step files the manifest
        does not list (nothing when there is no readable manifest to trust)."""
        manifest = self.read_manifest()
        if manifest is None:
            return []
        listed = {name for e in manifest["checkpoints"] for name in e["files"]}
        strays = [p for p in self.dir.glob(".*.tmp")]
        strays += [p for p in self.dir.glob("step_*.pt") if p.name not in listed]
        for p in strays:
            p.unlink(missing_ok=True)
        return strays

    def latest_path(self) -> Path | None:
        """The newest listed checkpoint file that exists (no checksum check: for quick lookups)."""
        for entry in reversed(self.entries()):
            if (self.dir / entry.main).is_file():
                return self.dir / entry.main
        return None
