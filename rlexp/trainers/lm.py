"""Language-model stages of the RLHF pipeline that learn from text: ``pretrain`` (a base
model from the task's corpus, next-token loss on every token) and ``sft`` (supervised
fine-tuning on demonstrations, loss on the answer's tokens), with LoRA adapters or full
fine-tuning. Progress counts examples (sequences trained on).

A stage starts from a model built small from ``model.*`` (random init, no download), from
the model an earlier stage saved (``model.from_run=RUN_DIR``), or from a local directory
(``model.name_or_path``). At the end it exports ``model/`` (the trained model, adapters
merged, with its tokenizer: what ``model.from_run`` loads) and, with LoRA, ``adapter/``
(peft's format: ``PeftModel.from_pretrained(base, RUN_DIR/adapter)``).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlexp.config import DeviceConfig, TaskEnvConfig, TrainConfig
from rlexp.errors import ConfigError
from rlexp.lm.model import add_lora, load_pretrained, parameter_counts, quiet_transformers, tiny_llama
from rlexp.lm.tokenizer import char_tokenizer
from rlexp.trainers.base import Evaluation, Schedule, Trainer, Unit, refuse_step_settings

STEP_SETTINGS = {"total_steps": "algo.total_examples", "eval_interval_steps": "algo.eval_interval_examples",
                 "checkpoint_interval_steps": "algo.checkpoint_interval_examples", "eval_episodes": "algo.eval_prompts",
                 "logger.log_interval_steps": "algo.log_interval_examples"}
STARTS_FROM = {"pretrain": ("pretrain",), "sft": ("pretrain", "sft")}  # stage -> stages whose model it may load


def check_lm_run(cfg: TrainConfig) -> None:
    """Refuse an env that is not a language task, gym step settings, and device settings the
    language-model stages do not use.

    Raises:
        ConfigError: one line naming the setting.
    """
    if not isinstance(cfg.env, TaskEnvConfig):
        raise ConfigError(f"algo={cfg.algo.name} trains a language model on a task; env={cfg.env.id} is not one: "
                          "use env=arithmetic")
    refuse_step_settings(cfg, "examples", STEP_SETTINGS)
    defaults = DeviceConfig()
    for key in ("amp", "compile", "replay"):
        if getattr(cfg.device, key) != getattr(defaults, key):
            raise ConfigError(f"device.{key} is not used by algo={cfg.algo.name} (language-model stages); "
                              f"drop device.{key}")


def stage_model(cfg: TrainConfig) -> tuple[Any, Any, str]:
    """(model, tokenizer, where it came from) for a stage: ``model.from_run``, ``model.name_or_path``
    or a new model of ``model.*``'s sizes (its weights drawn from torch's global generator)."""
    m = cfg.model
    if m.from_run:
        from rlexp.runs import load_run_config

        source = load_run_config(m.from_run)
        allowed = STARTS_FROM[cfg.algo.name]
        if source.algo.name not in allowed:
            raise ConfigError(f"model.from_run={m.from_run} is a run of algo={source.algo.name}; "
                              f"algo={cfg.algo.name} starts from a run of algo={' or '.join(allowed)}")
        directory = Path(m.from_run) / "model"
        if not (directory / "config.json").is_file():
            raise ConfigError(f"model.from_run={m.from_run} has no model/ directory: the run did not finish; "
                              f"resume it first (rlexp resume {m.from_run})")
        model, tokenizer = load_pretrained(str(directory))
        return model, tokenizer, f"the model of {m.from_run}"
    if m.name_or_path:
        model, tokenizer = load_pretrained(m.name_or_path)
        return model, tokenizer, m.name_or_path
    quiet_transformers()
    tokenizer = char_tokenizer()
    model = tiny_llama(len(tokenizer), hidden_size=m.hidden_size, layers=m.layers, heads=m.heads,
                       intermediate_size=m.intermediate_size, max_positions=m.max_positions,
                       pad_id=tokenizer.pad_token_id, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id)
    return model, tokenizer, "a new model (random init)"


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids under left padding: 0 at each sequence's first real token."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


class LanguageModelTrainer(Trainer):
    """``pretrain`` and ``sft``; see the module docstring."""

    unit = Unit(key="examples", one="example", many="examples")
    score_name = "eval_score"
    rate_metric = "perf/examples_per_s"
    budget_key = "algo.total_examples"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        check_lm_run(cfg)
        a = cfg.algo
        self.cfg, self.device = cfg, device
        self.schedule = Schedule(a.total_examples, a.log_interval_examples, a.eval_interval_examples,
                                 a.checkpoint_interval_examples)
        self.task = cfg.env.task()
        model, self.tokenizer, self.source = stage_model(cfg)
        self.lora = a.name == "sft" and cfg.lora is not None and cfg.lora.enabled
        if self.lora:
            lo = cfg.lora
            model = add_lora(model, rank=lo.rank, alpha=lo.alpha, dropout=lo.dropout, target_modules=lo.target_modules)
        self.model = model.to(device)
        self.trainable, self.total_params = parameter_counts(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)
        data_rng = np.random.default_rng([cfg.seed, 0])
        self.examples = self._dataset(a.dataset_examples, data_rng)
        self.heldout = self._dataset(a.eval_prompts, np.random.default_rng([cfg.seed, 1]))
        self.rng = np.random.default_rng([cfg.seed, 2])  # the order examples are visited in
        self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
        self.progress = 0
        self.losses: list[float] = []
        self.tokens, self.busy_s = 0, 0.0

    # ------------------------------------------------------------------ data

    def _dataset(self, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """(prompt, answer) pairs; pretrain's are corpus lines with no prompt (every token learned)."""
        if self.cfg.algo.name == "pretrain":
            return [("", line) for line in self.task.corpus(count, rng)]
        return self.task.demonstrations(count, rng)

    def _batch(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Left-padded ids, mask, positions and labels (-100 on the prompt and the padding)."""
        tok = self.tokenizer
        rows, learn = [], []
        for prompt, answer in pairs:
            head = tok(prompt)["input_ids"]  # <bos> + prompt
            tail = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            rows.append(head + tail)
            learn.append([False] * len(head) + [True] * len(tail))
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, keep) in enumerate(zip(rows, learn)):
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
            labels[i, width - len(row):] = torch.where(torch.tensor(keep), torch.tensor(row), -100)
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                "position_ids": positions(mask).to(self.device), "labels": labels.to(self.device)}

    def _next_pairs(self) -> list[tuple[str, str]]:
        n = min(self.cfg.algo.batch_size, self.schedule.total - self.progress)
        picked = []
        while len(picked) < n:
            if self.cursor == len(self.order):
                self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
            take = self.order[self.cursor:self.cursor + n - len(picked)]
            self.cursor += len(take)
            picked += [self.examples[i] for i in take]
        return picked

    # ------------------------------------------------------------------ the work

    def start(self, resumed: bool) -> list[str]:
        kind = "LoRA" if self.lora else "every weight"
        return [f"{self.cfg.algo.name} from {self.source}: {self.trainable:,} of {self.total_params:,} parameters "
                f"train ({kind}, {self.trainable / self.total_params:.2%})"]

    def advance(self) -> dict[str, float]:
        started = time.perf_counter()
        batch = self._batch(self._next_pairs())
        self.model.train()
        loss = self.model(**batch).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        a = self.cfg.algo
        if a.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], a.max_grad_norm)
        self.optimizer.step()
        self.progress += len(batch["input_ids"])
        self.tokens += int(batch["attention_mask"].sum())
        self.busy_s += time.perf_counter() - started
        value = loss.item()
        self.losses.append(value)
        return {"loss/lm": value}

    def log_metrics(self) -> dict[str, float]:
        metrics = {"train/loss": float(np.mean(self.losses))} if self.losses else {}
        if self.busy_s > 0:
            metrics["perf/tokens_per_s"] = self.tokens / self.busy_s
        self.losses, self.tokens, self.busy_s = [], 0, 0.0
        return metrics

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def heldout_loss(self) -> float:
        self.model.eval()
        losses = [float(self.model(**self._batch(self.heldout[i:i + 64])).loss) for i in range(0, len(self.heldout), 64)]
        return float(np.mean(losses))

    @torch.no_grad()
    def answers(self, prompts: list[str], max_tokens: int) -> tuple[list[str], list[bool]]:
        """Greedy answers to ``prompts`` and whether each ended (its end-of-sequence token came)."""
        tok = self.tokenizer
        self.model.eval()
        enc = tok(prompts, return_tensors="pt", padding=True).to(self.device)
        out = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                                  eos_token_id=tok.eos_token_id)
        texts, ended = [], []
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            stop = row.index(tok.eos_token_id) if tok.eos_token_id in row else len(row)
            texts.append(tok.decode(row[:stop], skip_special_tokens=True))
            ended.append(stop < len(row))
        return texts, ended

    def evaluate(self, index: int) -> Evaluation:
        loss = self.heldout_loss()
        metrics = {"eval/loss": loss}
        if self.cfg.algo.name == "pretrain":
            return Evaluation(-loss, 0.0, metrics, f"eval held-out loss {loss:.4f} per token")
        prompts = [p for p, _ in self.heldout]
        answers, ended = self.answers(prompts, self.cfg.algo.max_answer_tokens)
        gold = np.array([self.task.utility(p, a) for p, a in zip(prompts, answers)])
        correct = np.mean([self.task.utility(p, a.strip().split(" ")[0]) == 1.0 for p, a in zip(prompts, answers)])
        metrics.update({"eval/gold": float(gold.mean()), "eval/correct_rate": float(correct),
                        "eval/ended_rate": float(np.mean(ended))})
        text = (f"eval gold {gold.mean():.3f} +/- {gold.std():.3f} over {len(prompts)} prompts "
                f"({correct:.0%} right, held-out loss {loss:.4f})")
        return Evaluation(float(gold.mean()), float(gold.std()), metrics, text)

    def summary(self) -> dict[str, Any]:
        return {"task": self.cfg.env.id, "trainable_parameters": self.trainable, "parameters": self.total_params,
                "lora": self.lora}

    # ------------------------------------------------------------------ exports and state

    def exports(self) -> dict[str, Any]:
        out = {"model": ("the trained model (adapters merged) and tokenizer: model.from_run loads it", self._save_model)}
        if self.lora:
            out["adapter"] = ("the LoRA adapters in peft's format (PeftModel.from_pretrained)",
                              lambda path: self.model.save_pretrained(path))
        return out

    def _save_model(self, path: Path) -> None:
        model = copy.deepcopy(self.model).merge_and_unload() if self.lora else self.model
        model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.bit_generator.state, "order": torch.from_numpy(self.order), "cursor": self.cursor,
                "progress": self.progress, "losses": self.losses}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.order, self.cursor = state["order"].numpy(), int(state["cursor"])
        self.progress, self.losses = int(state["progress"]), list(state["losses"])

    def non_finite(self) -> str:
        for name, p in self.model.named_parameters():
            if not torch.isfinite(p).all():
                return f"model parameter {name}"
        return ""
