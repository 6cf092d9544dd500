import torch

from rlexp.checkpoint import load_checkpoint, save_atomic, save_checkpoint


def test_save_and_load(tmp_path):
    state = {"w": torch.arange(4.0), "step": 7, "config": {"a": [1, 2]}}
    latest = save_checkpoint(tmp_path / "ckpt", state, 7, periodic=True)
    assert latest.name == "latest.pt"
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["latest.pt", "step_0000000007.pt"]
    loaded = load_checkpoint(latest)
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 7 and loaded["config"] == {"a": [1, 2]}


def test_failed_save_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "latest.pt"
    save_atomic({"v": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    try:
        save_atomic({"v": Unpicklable()}, path)
    except RuntimeError:
        pass
    assert load_checkpoint(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]
