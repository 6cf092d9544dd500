"""rlexp.checkpoint: atomic, checksummed checkpoints; the newest good one wins."""

import errno
import json

import pytest
import torch

from rlexp.checkpoint import CheckpointError, CheckpointStore, file_sha256, load_checkpoint, save_atomic


def _state(step):
    return {"algo": {"w": torch.full((4,), float(step))}, "step": step}


def test_save_and_load_keeps_the_last_k_with_checksums(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=2)
    for step in (10, 20, 30):
        store.save(step, _state(step), {"replay": torch.arange(step)})
    names = sorted(p.name for p in tmp_path.iterdir())  # buffers: with the newest checkpoint only
    assert names == ["latest.pt", "manifest.json", "step_0000000020.pt", "step_0000000030.buffers.pt",
                     "step_0000000030.pt"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [e["step"] for e in manifest["checkpoints"]] == [20, 30]
    for name, record in manifest["checkpoints"][-1]["files"].items():
        assert record["sha256"] == file_sha256(tmp_path / name) and record["bytes"] == (tmp_path / name).stat().st_size
    entry, state, buffers = store.latest(need_buffers=True)
    assert entry.step == 30 and torch.equal(state["algo"]["w"], torch.full((4,), 30.0))
    assert torch.equal(buffers["replay"], torch.arange(30))
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 30  # latest.pt: a symlink to the newest


def test_a_fallback_checkpoint_resumes_without_buffers(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=3)
    for step in (10, 20):
        store.save(step, _state(step), {"replay": torch.arange(step)})
    (tmp_path / "step_0000000020.pt").unlink()
    entry, state, buffers = store.latest(need_buffers=True)
    assert entry.step == 10 and buffers is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_latest_falls_back_to_the_previous_with_a_warning(tmp_path, capsys, damage):
    store = CheckpointStore(tmp_path, keep_last=3)
    for step in (10, 20):
        store.save(step, _state(step))
    bad = tmp_path / "step_0000000020.pt"
    data = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        bad.write_bytes(data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:])
    else:
        bad.unlink()
    entry, state, _ = store.latest()
    assert entry.step == 10 and state["step"] == 10
    err = capsys.readouterr().err
    assert str(bad) in err and "using the checkpoint before it" in err


def test_a_full_disk_fails_that_checkpoint_and_keeps_the_previous(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, keep_last=3)
    store.save(10, _state(10), {"replay": torch.zeros(3)})
    before = sorted(p.name for p in tmp_path.iterdir())

    def full(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=r"checkpoint at step 20 failed: No space left on device .*"
                                              r"the previous checkpoint \(step 10\) is intact"):
        store.save(20, _state(20), {"replay": torch.zeros(3)})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary or partial file
    assert store.latest()[0].step == 10


def test_failed_save_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "best.pt"
    save_atomic({"v": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_atomic({"v": Unpicklable()}, path)
    assert load_checkpoint(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_loading_never_runs_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"algo": Payload()}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_checkpoint(path)


def test_strays_of_a_killed_write_are_removed(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save(10, _state(10))
    (tmp_path / ".step_0000000020.pt.abc.tmp").write_bytes(b"half")
    (tmp_path / "step_0000000020.buffers.pt").write_bytes(b"orphan")
    assert {p.name for p in store.remove_strays()} == {".step_0000000020.pt.abc.tmp", "step_0000000020.buffers.pt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "manifest.json", "step_0000000010.pt"]
