"""FlatAdam is torch.optim.Adam(fused=True) bit for bit, with the same state_dict format."""

from __future__ import annotations

import torch

from rlexp.algos.flat_adam import FlatAdam


def _pair(n: int = 1000):
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(n))
    b = torch.nn.Parameter(a.detach().clone())
    return a, b


def _steps(param, optimizer, grads, lrs):
    for g, lr in zip(grads, lrs):
        optimizer.param_groups[0]["lr"] = lr
        param.grad = g.clone()
        optimizer.step()


def test_same_numbers_as_torch_fused_adam_with_an_annealed_lr():
    a, b = _pair()
    ours = FlatAdam(a, lr=1e-3, eps=1e-5)
    theirs = torch.optim.Adam([b], lr=1e-3, eps=1e-5, fused=True)
    grads = [torch.randn(1000) * 10 ** (k % 4 - 2) for k in range(25)]
    lrs = [1e-3 * (1 - k / 25) for k in range(25)]
    _steps(a, ours, grads, lrs)
    _steps(b, theirs, grads, lrs)
    assert torch.equal(a, b)
    mine, torchs = ours.state_dict(), theirs.state_dict()
    assert mine["param_groups"] == torchs["param_groups"]
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(mine["state"][0][key], torchs["state"][0][key])


def test_state_dicts_move_between_flat_adam_and_torch_adam():
    a, b = _pair()
    grads = [torch.randn(1000) for _ in range(10)]
    theirs = torch.optim.Adam([b], lr=3e-4, fused=True)
    _steps(b, theirs, grads[:5], [3e-4] * 5)
    ours = FlatAdam(a, lr=1.0)
    a.data.copy_(b.detach())
    ours.load_state_dict(theirs.state_dict())  # a checkpoint written by torch's Adam
    assert ours.param_groups[0]["lr"] == 3e-4
    _steps(a, ours, grads[5:], [3e-4] * 5)
    _steps(b, theirs, grads[5:], [3e-4] * 5)
    assert torch.equal(a, b)
    again = torch.optim.Adam([torch.nn.Parameter(a.detach().clone())], lr=1.0, fused=True)
    again.load_state_dict(ours.state_dict())  # and the other way
    assert again.param_groups[0]["lr"] == 3e-4
    assert torch.equal(again.state_dict()["state"][0]["exp_avg"], ours.exp_avg)


def test_a_fresh_state_dict_round_trips():
    a, _ = _pair()
    ours = FlatAdam(a, lr=1e-3)
    state = ours.state_dict()
    assert state["state"] == {}
    other = FlatAdam(torch.nn.Parameter(torch.zeros(1000)), lr=5.0)
    other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 1e-3 and float(other.step_count) == 0
