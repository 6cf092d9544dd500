"""Language-model stages of the RLHF pipeline that learn from text: ``pretrain`` (a base
model from the task's corpus, next-token loss on every token), ``sft`` (supervised
fine-tuning on demonstrations, loss on the answer's tokens), counted in examples, and
``reward_model`` (a scalar head on the last token, Bradley-Terry loss on preference pairs),
counted in pairs; with LoRA adapters or full fine-tuning.

A stage starts from a model built small from ``model.*`` (random init, no download), from
the model an earlier stage saved (``model.from_run=RUN_DIR``), or from a local directory
(``model.name_or_path``). At the end it exports ``model/`` (the trained model, adapters
merged, with its tokenizer: what ``model.from_run`` loads) and, with LoRA, ``adapter/``
(peft's format: ``PeftModel.from_pretrained(base, RUN_DIR/adapter)``).
"""

from __future__ import annotations

import copy
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlexp.budget import EXAMPLES, PAIRS, read
from rlexp.config import DeviceConfig, TaskEnvConfig, TextDataEnvConfig, TrainConfig
from rlexp.errors import ConfigError
from rlexp.lm.model import add_lora, load_pretrained, parameter_counts, quiet_transformers, tiny_llama
from rlexp.lm.parallel import DataParallel
from rlexp.lm.rlhf import bradley_terry_loss
from rlexp.lm.sampling import Answers, encode_prompts, generate, positions, sequence_scores
from rlexp.lm.task import ArithmeticTask, best_accuracy
from rlexp.lm.tokenizer import char_tokenizer, pad_left
from rlexp.trainers.base import Evaluation, Trainer


def check_lm_run(cfg: TrainConfig) -> None:
    """Refuse an env that is not a language task, and device settings the language-model
    stages do not use.

    Raises:
        ConfigError: one line naming the setting.
    """
    if not isinstance(cfg.env, (TaskEnvConfig, TextDataEnvConfig)):
        raise ConfigError(f"algo={cfg.algo.name} trains a language model on a task; env={cfg.env.id} is not one: "
                          "use env=arithmetic (the shipped task) or env=text_data env.train_file=FILE (your texts)")
    defaults = DeviceConfig()
    for key in ("amp", "compile", "replay"):
        if getattr(cfg.device, key) != getattr(defaults, key):
            raise ConfigError(f"device.{key} is not used by algo={cfg.algo.name} (language-model stages); "
                              f"drop device.{key}")


def stage_model(cfg: TrainConfig, allowed: tuple[str, ...], head: str = "lm") -> tuple[Any, Any, str]:
    """(model, tokenizer, where it came from) for a stage: ``model.from_run`` (a run of one of
    the ``allowed`` algorithms), ``model.name_or_path`` or a new model of ``model.*``'s sizes (its
    weights drawn from torch's global generator); ``head="score"``: as a reward model."""
    m = cfg.model
    if m.from_run:
        from rlexp.runs import load_run_config

        source = load_run_config(m.from_run)
        if source.algo.name not in allowed:
            raise ConfigError(f"model.from_run={m.from_run} is a run of algo={source.algo.name}; "
                              f"algo={cfg.algo.name} starts from a run of algo={' or '.join(allowed)}")
        directory = Path(m.from_run) / "model"
        if not (directory / "config.json").is_file():
            raise ConfigError(f"model.from_run={m.from_run} has no model/ directory: the run did not finish; "
                              f"resume it first (rlexp resume {m.from_run})")
        model, tokenizer = load_pretrained(str(directory), head)
        return model, tokenizer, f"the model of {m.from_run}"
    if m.name_or_path:
        model, tokenizer = load_pretrained(m.name_or_path, head)
        return model, tokenizer, m.name_or_path
    quiet_transformers()
    tokenizer = char_tokenizer()
    model = tiny_llama(len(tokenizer), hidden_size=m.hidden_size, layers=m.layers, heads=m.heads,
                       intermediate_size=m.intermediate_size, max_positions=m.max_positions,
                       pad_id=tokenizer.pad_token_id, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id,
                       head=head)
    return model, tokenizer, "a new model (random init)"


def text_source(cfg: TrainConfig, tokenizer: Any) -> Any:
    """Where a stage's texts come from: the shipped task (``env=arithmetic``: generated, with a
    known gold utility) or the user's files (``env=text_data``: :class:`rlexp.lm.data.UserTexts`)."""
    if isinstance(cfg.env, TextDataEnvConfig):
        from rlexp.lm.data import UserTexts

        return UserTexts(cfg.env, tokenizer)
    return ArithmeticTask.from_config(cfg.env)


def seed_from(*key: int) -> int:
    """A 63-bit seed from a tuple of non-negative ints (NumPy's SeedSequence mixes them)."""
    return int(np.random.SeedSequence(list(key)).generate_state(2, np.uint64)[0] >> np.uint64(1))


def answer_prompts(model: Any, tokenizer: Any, prompts: list[str], max_tokens: int, device: torch.device, *,
                   generator: torch.Generator | None = None, temperature: float = 1.0) -> Answers:
    """One answer to each prompt: sampled with ``generator`` at ``temperature``, or greedy without one."""
    ids, mask = encode_prompts(tokenizer, prompts, device)
    return generate(model, ids, mask, max_tokens=max_tokens, eos_id=tokenizer.eos_token_id,
                    pad_id=tokenizer.pad_token_id, greedy=generator is None, temperature=temperature,
                    generator=generator)


def model_exports(model: Any, tokenizer: Any, lora: bool) -> dict[str, Any]:
    """A stage's exports: ``model/`` (adapters merged, with the tokenizer) and, with LoRA,
    ``adapter/`` (peft's format, with the tokenizer); both tokenizers pad on the left."""

    def save_model(path: Path) -> None:
        merged = copy.deepcopy(model).merge_and_unload() if lora else model
        merged.save_pretrained(path)
        pad_left(tokenizer).save_pretrained(path)  # a loader's batched prompts must end in the last column

    def save_adapter(path: Path) -> None:
        model.save_pretrained(path)
        pad_left(tokenizer).save_pretrained(path)

    out = {"model": ("the trained model (adapters merged) and tokenizer: model.from_run loads it", save_model)}
    if lora:
        out["adapter"] = ("the LoRA adapters in peft's format (PeftModel.from_pretrained) and the tokenizer",
                          save_adapter)
    return out


class TextStageTrainer(Trainer):
    """What every language-model stage shares: its model (built, loaded or from an earlier
    stage; LoRA or every weight), AdamW, a generated dataset visited in shuffled passes, a
    held-out set, exports and state. A stage sets its ``budget``, ``dataset_key`` and ``head``,
    and implements ``_dataset``, ``_loss`` and ``evaluate``."""

    score_name = "eval_score"
    data_parallel = True
    head = "lm"  # the model's output: lm (next-token logits) or score (one scalar: a reward model)
    loss_metric = "loss/lm"
    dataset_key: str  # the config key of the training set's size (its held-out set's is the budget's eval_size)
    data_kind: str  # what it reads from the user's files (env=text_data): text, demonstrations or pairs

    def __init__(self, cfg: TrainConfig, device: torch.device):
        a = cfg.algo
        check_lm_run(cfg)
        self.parallel = DataParallel(device)  # under accelerate launch: this process's share of each batch
        self.cfg, self.device = cfg, self.parallel.device
        device = self.device
        self.schedule = self.budget.schedule(cfg)
        model, self.tokenizer, self.source = stage_model(cfg, self.starts_from, self.head)
        self.task = text_source(cfg, self.tokenizer)
        self.lora = cfg.lora is not None and cfg.lora.enabled
        if self.lora:
            lo = cfg.lora
            model = add_lora(model, rank=lo.rank, alpha=lo.alpha, dropout=lo.dropout, target_modules=lo.target_modules,
                             task_type="CAUSAL_LM" if self.head == "lm" else "SEQ_CLS")
        self.model = model.to(device)
        self._token_ids: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        self.trainable, self.total_params = parameter_counts(self.model)
        self.params = [p for p in self.model.parameters() if p.requires_grad]  # what the optimizer updates
        self.optimizer = torch.optim.AdamW(self.params, lr=a.lr, weight_decay=a.weight_decay)
        # the module the updates run through: self.model, or its data-parallel wrapper when launched
        self.step_model, self.optimizer = self.parallel.prepare(self.model, self.optimizer)
        if self.task.has_gold:  # the shipped task: generated, the held-out set drawn apart
            self.examples = self._dataset(read(cfg, self.dataset_key), np.random.default_rng([cfg.seed, 0]))
            self.heldout = self._dataset(read(cfg, self.budget.eval_size), np.random.default_rng([cfg.seed, 1]))
        else:  # the user's files, read once (the held-out rows: at most the budget's evaluation size)
            self.examples, self.heldout = self.task.split(self.data_kind, read(cfg, self.budget.eval_size))
        self.rng = np.random.default_rng([cfg.seed, 2])  # the order examples are visited in
        self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
        self.progress = 0
        self.losses: list[float] = []
        self.tokens, self.busy_s = 0, 0.0

    @abstractmethod
    def _dataset(self, count: int, rng: np.random.Generator) -> list:
        """``count`` items of the stage's data (texts or labelled pairs), drawn with ``rng``."""

    @abstractmethod
    def _loss(self, items: list) -> tuple[torch.Tensor, int]:
        """(the loss of a batch of dataset items, the tokens it read)."""

    # ------------------------------------------------------------------ data

    def _encode(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """(prompt, answer) pairs as left-padded ids, mask, positions and labels (-100 on the
        prompt and the padding); every answer ends with the end-of-sequence token."""
        tok = self.tokenizer
        new = list(dict.fromkeys(pair for pair in pairs if pair not in self._token_ids))
        if new:
            self._tokenize(new)
        parts = [self._token_ids[pair] for pair in pairs]
        width = max(len(head) + len(tail) for head, tail in parts)
        # filled row by row in NumPy (a slice assignment per row), one tensor each at the end
        ids = np.full((len(parts), width), tok.pad_token_id, dtype=np.int64)
        labels = np.full((len(parts), width), -100, dtype=np.int64)
        mask = np.zeros((len(parts), width), dtype=np.int64)
        for i, (head, tail) in enumerate(parts):
            start = width - len(head) - len(tail)
            ids[i, start:] = head + tail
            mask[i, start:] = 1
            labels[i, width - len(tail):] = tail
        mask_t = torch.from_numpy(mask)
        return {"input_ids": torch.from_numpy(ids).to(self.device), "attention_mask": mask_t.to(self.device),
                "position_ids": positions(mask_t).to(self.device), "labels": torch.from_numpy(labels).to(self.device)}

    def _tokenize(self, pairs: list[tuple[str, str]]) -> None:
        """(``<bos>`` + prompt, answer + ``<eos>``) token ids of each pair, computed once per text
        pair (the datasets are fixed and every pass revisits them), in one batched call each
        for the prompts and the answers."""
        tok = self.tokenizer
        heads = tok([p for p, _ in pairs])["input_ids"]
        tails = tok([a for _, a in pairs], add_special_tokens=False)["input_ids"]
        for pair, head, tail in zip(pairs, heads, tails):
            self._token_ids[pair] = (head, tail + [tok.eos_token_id])

    def _next_items(self) -> list:
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
        items = self._next_items()
        mine = self.parallel.shard(items)  # all of them, unless launched data-parallel
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, tokens = self._loss(mine or items)
        if not mine:  # a data-parallel backward waits for every process: one with no share adds nothing
            loss, tokens = loss * 0, 0
        self.parallel.backward(loss)
        value = loss.item()
        a = self.cfg.algo
        if a.max_grad_norm is not None:
            self.parallel.clip_grad_norm_(self.params, a.max_grad_norm)
        self.optimizer.step()
        self.progress += len(items)
        self.tokens += tokens * self.parallel.world
        self.busy_s += time.perf_counter() - started
        value = self.parallel.mean(value)
        self.losses.append(value)
        return {self.loss_metric: value}

    def log_metrics(self) -> dict[str, float]:
        metrics = {"train/loss": float(np.mean(self.losses))} if self.losses else {}
        if self.busy_s > 0:
            metrics["perf/tokens_per_s"] = self.tokens / self.busy_s
        self.losses, self.tokens, self.busy_s = [], 0, 0.0
        return metrics

    def summary(self) -> dict[str, Any]:
        return {"task": self.cfg.env.id, "trainable_parameters": self.trainable, "parameters": self.total_params,
                "lora": self.lora}

    # ------------------------------------------------------------------ exports and state

    def exports(self) -> dict[str, Any]:
        return model_exports(self.model, self.tokenizer, self.lora)

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


class LanguageModelTrainer(TextStageTrainer):
    """Next-token loss on (prompt, answer) pairs, on the answer's tokens, counted in examples;
    evaluated by the loss on held-out pairs."""

    budget = EXAMPLES
    rate_metric = "perf/examples_per_s"
    dataset_key = "algo.dataset_examples"

    def _loss(self, items: list) -> tuple[torch.Tensor, int]:
        batch = self._encode(items)
        return self.step_model(**batch).loss, int(batch["attention_mask"].sum())

    @torch.no_grad()
    def heldout_loss(self) -> float:
        self.model.eval()
        losses = [float(self.model(**self._encode(self.heldout[i:i + 64])).loss) for i in range(0, len(self.heldout), 64)]
        return float(np.mean(losses))

    def evaluate(self, index: int) -> Evaluation:
        loss = self.heldout_loss()
        return Evaluation(-loss, 0.0, {"eval/loss": loss}, f"eval held-out loss {loss:.4f} per token")


class PretrainTrainer(LanguageModelTrainer):
    """``pretrain``: a base model from the task's corpus, every token learned."""

    starts_from = ("pretrain",)
    data_kind = "text"

    def _dataset(self, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        return [("", line) for line in self.task.corpus(count, rng)]


class SFTTrainer(LanguageModelTrainer):
    """``sft``: supervised fine-tuning on the task's demonstrations, the answer's tokens learned;
    evaluated by the gold utility of its answers to the held-out prompts, greedy (its score)
    and one sampled at temperature 1, beside the held-out loss."""

    starts_from = ("pretrain", "sft")
    data_kind = "demonstrations"

    def _dataset(self, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        return self.task.demonstrations(count, rng)

    def evaluate(self, index: int) -> Evaluation:
        if not self.task.has_gold:  # the user's texts: the held-out loss alone
            return super().evaluate(index)
        loss = self.heldout_loss()
        metrics = {"eval/loss": loss}
        prompts = [p for p, _ in self.heldout]
        self.model.eval()
        max_tokens = self.cfg.algo.max_answer_tokens
        greedy, spread = self._judge(prompts, answer_prompts(self.model, self.tokenizer, prompts, max_tokens, self.device))
        sampler = torch.Generator(device=self.device).manual_seed(seed_from(self.cfg.seed, 5, index))
        sampled, _ = self._judge(prompts, answer_prompts(self.model, self.tokenizer, prompts, max_tokens, self.device,
                                                         generator=sampler))
        metrics.update({f"eval/{k}": v for k, v in sampled.items()})
        metrics.update({f"eval/{k}_greedy": v for k, v in greedy.items()})
        text = (f"eval gold {greedy['gold']:.3f} greedy, {sampled['gold']:.3f} sampled over {len(prompts)} prompts "
                f"({greedy['correct_rate']:.0%} right greedy, held-out loss {loss:.4f})")
        return Evaluation(greedy["gold"], spread, metrics, text)

    def _judge(self, prompts: list[str], answers: Answers) -> tuple[dict[str, float], float]:
        """The task's gold utility of the answers (the mean, the share that start with the right
        number, the share that ended), and the gold's spread over the prompts."""
        texts = answers.texts(self.tokenizer)
        gold = np.array([self.task.utility(p, a) for p, a in zip(prompts, texts)])
        correct = np.mean([self.task.utility(p, a.strip().split(" ")[0]) == 1.0 for p, a in zip(prompts, texts)])
        return {"gold": float(gold.mean()), "correct_rate": float(correct),
                "ended_rate": float(answers.ended.float().mean())}, float(gold.std())


class RewardModelTrainer(TextStageTrainer):
    """``reward_model``: a scalar on each answer's last token, the Bradley-Terry loss
    ``-log sigmoid(r_chosen - r_rejected)`` on labelled pairs; evaluated by held-out accuracy
    against the labels, beside the best accuracy those noisy labels allow."""

    budget = PAIRS
    starts_from = ("pretrain", "sft")
    rate_metric = "perf/pairs_per_s"
    head = "score"
    loss_metric = "loss/reward_model"
    dataset_key = "algo.dataset_pairs"
    data_kind = "pairs"

    def _dataset(self, count: int, rng: np.random.Generator) -> list:
        return self.task.preference_pairs(count, rng)

    def rewards(self, pairs: list, training: bool = False) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(r_chosen, r_rejected, tokens read) for a batch of pairs (``training``: through the
        module the updates run through)."""
        batch = self._encode([(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs])
        scores = sequence_scores(self.model, batch["input_ids"], batch["attention_mask"],  # the RL stages score so too
                                 run=self.step_model if training else None)
        return scores[:len(pairs)], scores[len(pairs):], int(batch["attention_mask"].sum())

    def _loss(self, items: list) -> tuple[torch.Tensor, int]:
        chosen, rejected, tokens = self.rewards(items, training=True)
        return bradley_terry_loss(chosen, rejected)[0], tokens

    @torch.no_grad()
    def evaluate(self, index: int) -> Evaluation:
        self.model.eval()
        right, losses = [], []
        for i in range(0, len(self.heldout), 64):
            chosen, rejected, _ = self.rewards(self.heldout[i:i + 64])
            loss, _ = bradley_terry_loss(chosen, rejected)
            right += (chosen > rejected).tolist()
            losses.append(float(loss))
        accuracy = float(np.mean(right))
        metrics = {"eval/rm_accuracy": accuracy, "eval/loss": float(np.mean(losses))}
        text = f"eval accuracy {accuracy:.3f} on {len(self.heldout)} held-out pairs"
        if self.task.has_gold:  # the shipped task knows how noisy its labels are
            metrics["eval/rm_best_accuracy"] = best = best_accuracy(self.heldout)
            text += f" (the labels' noise allows {best:.3f})"
        return Evaluation(accuracy, float(np.std(right)), metrics, text)
