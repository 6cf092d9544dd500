"""Adam on one flat parameter (``networks.flatten_parameters``): one fused kernel per step.

``torch.optim.Adam(fused=True)`` runs the same kernel (``torch._fused_adam_``), but around it
its ``step()`` runs Python on every call on CPU (hooks, tensor grouping, profiler scopes):
more than the kernel itself costs on a classic-control network. Its constructor also imports
``torch._dynamo``, a fixed cost of a second or more on every short run. (The README's
performance section has the measured figures.)

:class:`FlatAdam` calls the kernel on the same state, so its numbers are torch's bit for
bit, and its ``state_dict`` has torch's format: a checkpoint written by either loads into
the other (``tests/algos/test_flat_adam.py`` checks both). The kernel runs on CPU from torch
2.4 (the floor in pyproject.toml) and on CUDA.
"""

from __future__ import annotations

from typing import Any

import torch


class FlatAdam:
    """Adam (Kingma & Ba 2015; torch's defaults: no weight decay, no amsgrad) on one tensor.

    ``param_groups[0]["lr"]`` is read at every step, so a schedule can anneal it as with a
    torch optimizer. The gradient is ``param.grad``.
    """

    def __init__(self, param: torch.nn.Parameter, lr: float, eps: float = 1e-8, betas: tuple[float, float] = (0.9, 0.999)):
        self.param = param
        self.param_groups = [{"lr": lr, "betas": tuple(betas), "eps": eps}]
        # torch's fused state: a float32 step count on the parameter's device, and the moments
        self.step_count = torch.zeros((), dtype=torch.float32, device=param.device)
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of ``param`` along ``param.grad``."""
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        self.step_count.add_(1)
        torch._fused_adam_(
            [self.param], [self.param.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.step_count],
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0, eps=group["eps"], amsgrad=False,
            maximize=False, grad_scale=None, found_inf=None,
        )

    # torch.optim.Adam's state_dict layout, so checkpoints move between the two
    def state_dict(self) -> dict[str, Any]:
        group = self.param_groups[0]
        state = {0: {"step": self.step_count.clone(), "exp_avg": self.exp_avg.clone(),
                     "exp_avg_sq": self.exp_avg_sq.clone()}} if float(self.step_count) > 0 else {}
        return {"state": state, "param_groups": [{
            "lr": group["lr"], "betas": group["betas"], "eps": group["eps"], "weight_decay": 0, "amsgrad": False,
            "maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": True,
            "decoupled_weight_decay": False, "params": [0],
        }]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        (group,) = state["param_groups"]
        if group.get("weight_decay", 0) or group.get("amsgrad") or group.get("maximize"):
            raise ValueError("this optimizer state uses Adam options FlatAdam does not have "
                             "(weight_decay, amsgrad or maximize)")
        self.param_groups[0].update(lr=group["lr"], betas=tuple(group["betas"]), eps=group["eps"])
        saved = state["state"].get(0)
        if saved is None:  # no step taken yet
            self.step_count.zero_()
            self.exp_avg.zero_()
            self.exp_avg_sq.zero_()
            return
        self.step_count.copy_(saved["step"])
        self.exp_avg.copy_(saved["exp_avg"])
        self.exp_avg_sq.copy_(saved["exp_avg_sq"])
