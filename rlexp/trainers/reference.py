"""What the stages that move a policy away from its SFT model share: the reward model they
may score with (:func:`load_reward_model`), the policy's pass over prompt + answer
(:class:`PolicyPass`), and the evaluation against the reference (:class:`ReferenceEvaluation`:
gold, reward and KL of sampled and greedy answers beside the SFT model's; ``rlexp eval RUN
--samples N``'s side-by-side and its lines). The RL stages (:mod:`rlexp.trainers.rlhf`) and
DPO (:mod:`rlexp.trainers.dpo`) use it, so their numbers are measured by one routine.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlexp.errors import ConfigError
from rlexp.lm.model import load_pretrained
from rlexp.lm.rlhf import kl_per_token
from rlexp.lm.sampling import Answers, entropy, positions, sequence_scores, token_logprobs
from rlexp.trainers.base import Evaluation
from rlexp.trainers.lm import answer_prompts, seed_from

SAMPLES_FILE = "samples.jsonl"  # the evaluations' sample answers, one JSON object per line


def load_reward_model(reward: Any, policy_tokenizer: Any, algo: str) -> Any:
    """The reward model ``reward`` (:class:`~rlexp.config.RewardConfig`) names, frozen: the one a
    run of ``algo`` saved (``reward.from_run``), or a local sequence-classification checkpoint
    (``reward.name_or_path``); refused when its tokenizer is not the policy's (its scores would
    read other tokens than the policy wrote).

    Raises:
        ConfigError: one line: not a reward-model run, not finished, not a checkpoint, or
            another tokenizer.
    """
    if reward.from_run:
        from rlexp.runs import load_run_config

        run_dir, key = reward.from_run, f"reward.from_run={reward.from_run}"
        source = load_run_config(run_dir)
        if source.algo.name != algo:
            raise ConfigError(f"{key} is a run of algo={source.algo.name}; it must be a run of algo={algo}")
        directory = Path(run_dir) / "model"
        if not (directory / "config.json").is_file():
            raise ConfigError(f"{key} has no model/ directory: the run did not finish; resume it "
                              f"first (rlexp resume {run_dir})")
        model, tokenizer = load_pretrained(str(directory), head="score")
        lineage = "train the reward model from the same model lineage (model.from_run of the SFT run)"
    else:
        key = f"reward.name_or_path={reward.name_or_path}"
        model, tokenizer = load_pretrained(reward.name_or_path, head="score", key="reward.name_or_path")
        lineage = "a reward model must share the policy's tokenizer"
    ours, theirs = policy_tokenizer.get_vocab(), tokenizer.get_vocab()
    if ours != theirs or policy_tokenizer.pad_token_id != tokenizer.pad_token_id:
        raise ConfigError(f"{key}: the reward model's tokenizer ({len(theirs)} tokens) is not the "
                          f"policy's ({len(ours)} tokens); {lineage}")
    model.eval().requires_grad_(False)
    return model


class PolicyPass(torch.nn.Module):
    """The policy's pass over prompt + answer sequences, as one module (what data parallelism
    wraps): the logits at each answer position, divided by the sampling temperature, and the
    value head's estimate there (for an algorithm with one)."""

    def __init__(self, decoder: torch.nn.Module, lm_head: torch.nn.Module, value_head: torch.nn.Module | None,
                 temperature: float):
        super().__init__()
        self.decoder, self.lm_head, self.value_head, self.temperature = decoder, lm_head, value_head, temperature

    def forward(self, seq: torch.Tensor, mask: torch.Tensor, prompt_len: int,
                values: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self.decoder(input_ids=seq, attention_mask=mask, position_ids=positions(mask),
                              use_cache=False).last_hidden_state[:, prompt_len - 1:-1]
        logits = self.lm_head(hidden) / self.temperature
        return logits, (self.value_head(hidden).squeeze(-1) if self.value_head is not None and values else None)


class ReferenceEvaluation:
    """What a stage that moves a policy away from its SFT model (the reference) measures: at each
    evaluation, the gold utility, reward-model score (when the stage has a reward model) and KL
    to the reference of one sampled answer per held-out prompt and of the greedy answer, beside
    the reference's own; ``rlexp eval RUN --samples N`` puts both side by side on new prompts.

    The RL stages and DPO share it, so their gold-vs-KL numbers are measured the same way. A
    stage using it sets ``cfg`` (``algo.max_answer_tokens``, ``temperature``,
    ``samples_logged``), ``model``, ``tokenizer``, ``task``, ``device``, ``lora``,
    ``reference`` (a frozen copy, or None with LoRA), ``policy_pass`` and ``reference_pass``
    (:class:`PolicyPass`), ``reward_model`` (None: no reward is measured), ``heldout_prompts``
    and ``progress``, then calls :meth:`_init_reference_evaluation`.
    """

    def _init_reference_evaluation(self) -> None:
        self.sft_eval: dict[str, float] | None = None  # the SFT model on the evaluation prompts (measured once)
        self.sft_answers: tuple[dict, dict] | None = None  # ...its sampled and greedy answers (measured again after a resume: same draws)
        self.last_eval: dict[str, float] = {}
        self.sample_lines: list[str] = []  # samples.jsonl so far

    def _reference_context(self):
        """While active, ``self.model`` is the reference (LoRA: adapters off)."""
        return self.model.disable_adapter() if self.lora else contextlib.nullcontext()

    def _forward(self, seq: torch.Tensor, mask: torch.Tensor, prompt_len: int,
                 reference: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:class:`PolicyPass`'s (logits, values) of the policy, or of the reference (no values)."""
        if not reference:
            return self.policy_pass(seq, mask, prompt_len)
        if self.reference_pass is not None:
            return self.reference_pass(seq, mask, prompt_len)
        with self._reference_context():
            return self.policy_pass(seq, mask, prompt_len, values=False)

    @torch.no_grad()
    def _score(self, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The reward model's score of each prompt + answer (the scalar on its last token); NaN
        without a reward model."""
        if self.reward_model is None:
            return torch.full((len(seq),), float("nan"), device=seq.device)
        return sequence_scores(self.reward_model, seq, mask)

    def _sampler(self, reference: bool) -> tuple[Any, Any]:
        """(the model that answers, the context to answer in): the policy, or the reference
        (a frozen copy, or the policy with its LoRA adapters off)."""
        if reference and self.reference is not None:
            return self.reference, contextlib.nullcontext()
        return self.model, self._reference_context() if reference else contextlib.nullcontext()

    @torch.no_grad()
    def _answer(self, prompts: list[str], generator: torch.Generator, reference: bool = False) -> dict[str, Any]:
        """Sampled answers to ``prompts`` (by the reference when asked) with everything the
        update and the metrics need."""
        a = self.cfg.algo
        model, context = self._sampler(reference)
        self.model.eval()
        with context:
            answers = answer_prompts(model, self.tokenizer, prompts, a.max_answer_tokens, self.device,
                                     generator=generator, temperature=a.temperature)
        seq, full_mask = answers.sequences
        prompt_len = answers.prompt_ids.shape[1]
        logits, values = self._forward(seq, full_mask, prompt_len, reference=reference)
        logprobs = token_logprobs(logits, answers.ids)
        ref_logprobs = logprobs if reference else token_logprobs(self._forward(seq, full_mask, prompt_len, True)[0],
                                                                  answers.ids)
        texts = answers.texts(self.tokenizer)
        fmask = answers.mask.float()
        return {"seq": seq, "mask": full_mask, "answer": answers.ids, "answer_mask": fmask, "prompt_len": prompt_len,
                "ended": answers.ended, "logprobs": logprobs, "ref_logprobs": ref_logprobs, "values": values,
                "entropy": (entropy(logits) * fmask).sum() / fmask.sum(), "reward": self._score(seq, full_mask),
                "gold": torch.tensor([self.task.utility(p, t) for p, t in zip(prompts, texts)]),
                "kl": (kl_per_token(logprobs, ref_logprobs, "k1") * fmask).sum(1), "texts": texts}

    @torch.no_grad()
    def _answer_greedily(self, prompts: list[str], reference: bool = False) -> dict[str, Any]:
        """The most likely answer to each prompt (by the reference when asked): its gold and reward."""
        model, context = self._sampler(reference)
        self.model.eval()
        with context:
            answers: Answers = answer_prompts(model, self.tokenizer, prompts, self.cfg.algo.max_answer_tokens,
                                              self.device)
        texts = answers.texts(self.tokenizer)
        return {"texts": texts, "reward": self._score(*answers.sequences), "ended": answers.ended,
                "answer_mask": answers.mask.float(),
                "gold": torch.tensor([self.task.utility(p, t) for p, t in zip(prompts, texts)])}

    eval_options = ("samples", "prompts")

    @classmethod
    def evaluate_saved(cls, run_dir: str, checkpoint: str, seed: int | None, device: str, trust: bool,
                       samples: int = 8, prompts: int = 256) -> tuple[dict[str, Any], list[str]]:
        """The policy beside its SFT model (the reference) on ``prompts`` new prompts: mean reward,
        gold (sampled and greedy) and KL, and ``samples`` answers side by side.

        Raises:
            ConfigError: bad counts, or a run whose SFT or reward-model run has gone; nothing
                has been written.
        """
        import dataclasses
        import os

        from rlexp.build import build_trainer, process_settings, seed_everything
        from rlexp.checkpoint import load_checkpoint
        from rlexp.runs import EVALS_FILE, load_run_config, resolve_checkpoint, run_relative

        seed = 0 if seed is None else seed
        if prompts < 1 or samples < 0 or seed < 0:
            raise ConfigError(f"--prompts must be >= 1, --samples and --seed >= 0, got {prompts}, {samples} and {seed}")
        cfg = load_run_config(run_dir, trust=trust)
        path = resolve_checkpoint(run_dir, checkpoint)
        evals_file = Path(run_dir) / EVALS_FILE
        if not os.access(run_dir, os.W_OK):
            raise ConfigError(f"cannot write {evals_file} (permission denied); copy the run directory somewhere "
                              "writable")
        cfg = dataclasses.replace(cfg, device=dataclasses.replace(cfg.device, type=device))
        with process_settings(cfg.device):
            seed_everything(cfg.seed)
            trainer = build_trainer(cfg)
            state = load_checkpoint(path)
            trainer.load_state_dict(state["trainer"])
            result = trainer.side_by_side(prompts, samples, seed)
        record = {"kind": "rlhf_side_by_side", "checkpoint": run_relative(path, run_dir), "step": state.get("step"),
                  "unit": trainer.budget.unit.one,
                  **result}
        with open(evals_file, "a") as f:
            f.write(json.dumps(record) + "\n")
        return record, describe_side_by_side(Path(run_dir), record)

    def _measure(self, prompts: list[str], generator: torch.Generator,
                 reference: bool) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
        """Means over ``prompts`` of one sampled answer each (gold, reward, KL, length, ended)
        and of the greedy answer (``*_greedy``: gold, reward, length, ended; no KL: a greedy
        answer is not a draw from the policy), and both sets of raw answers."""
        r = self._answer(prompts, generator, reference=reference)
        g = self._answer_greedily(prompts, reference=reference)
        means = {"gold": float(r["gold"].mean()), "reward": float(r["reward"].mean()), "kl": float(r["kl"].mean()),
                 "response_length": float(r["answer_mask"].sum(1).mean()),
                 "ended_rate": float(r["ended"].float().mean()),
                 "gold_greedy": float(g["gold"].mean()), "reward_greedy": float(g["reward"].mean()),
                 "response_length_greedy": float(g["answer_mask"].sum(1).mean()),
                 "ended_rate_greedy": float(g["ended"].float().mean())}
        return means, r, g

    def _generator(self, *key: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed_from(self.cfg.seed, *key))

    def evaluate(self, index: int) -> Evaluation:
        """The policy against the SFT model on the held-out prompts, scored by the sampled
        answers' gold (the user's texts have none: by their reward). Without a reward model, no
        reward is reported; without a gold utility, no gold."""
        if self.sft_answers is None:
            self.sft_eval, sampled, greedy = self._measure(self.heldout_prompts, self._generator(5), reference=True)
            self.sft_answers = sampled, greedy
        means, r, g = self._measure(self.heldout_prompts, self._generator(6, index), reference=False)
        sft, (sft_r, sft_g) = self.sft_eval, self.sft_answers
        gold, scored = self.task.has_gold, self.reward_model is not None
        metrics = {f"eval/{k}": v for k, v in means.items()}
        metrics.update({"eval/sft_gold": sft["gold"], "eval/sft_gold_greedy": sft["gold_greedy"],
                        "eval/gold_gain": means["gold"] - sft["gold"],
                        "eval/gold_gain_greedy": means["gold_greedy"] - sft["gold_greedy"],
                        "eval/sft_reward": sft["reward"], "eval/sft_reward_greedy": sft["reward_greedy"]})
        self.last_eval = {"gold": means["gold"], "gold_greedy": means["gold_greedy"], "kl": means["kl"],
                          "sft_gold": sft["gold"], "sft_gold_greedy": sft["gold_greedy"], "reward": means["reward"],
                          "sft_reward": sft["reward"]}
        rows = []
        for k in range(min(self.cfg.algo.samples_logged, len(self.heldout_prompts))):
            rows.append({"prompts": self.progress, "eval": index, "prompt": self.heldout_prompts[k],
                         "answer": r["texts"][k], "answer_greedy": g["texts"][k], "sft_answer": sft_r["texts"][k],
                         "sft_answer_greedy": sft_g["texts"][k], "gold": round(float(r["gold"][k]), 4),
                         "kl": round(float(r["kl"][k]), 4), "sft_gold": round(float(sft_r["gold"][k]), 4),
                         "reward": round(float(r["reward"][k]), 4)})
        # what is not measured (no gold utility, no reward model) is left out, not logged as NaN
        metrics = {k: v for k, v in metrics.items() if v == v}
        self.last_eval = {k: v for k, v in self.last_eval.items() if v == v}
        rows = [{k: v for k, v in row.items() if v == v} for row in rows]
        self.sample_lines += [json.dumps(row) for row in rows]
        parts = []
        if gold:
            parts.append(f"gold {means['gold']:.3f} sampled, {means['gold_greedy']:.3f} greedy (SFT {sft['gold']:.3f}, "
                         f"{sft['gold_greedy']:.3f})")
        if scored:
            parts.append(f"reward {means['reward']:.3f} (SFT {sft['reward']:.3f})")
        parts.append(f"KL {means['kl']:.3f} nats")
        text = f"eval {', '.join(parts)} over {len(self.heldout_prompts)} prompts"
        score = r["gold"] if gold else r["reward"]  # NaN without either: the stage scores itself otherwise (DPO)
        return Evaluation(float(score.mean()), float(score.float().numpy().std()), metrics, text,
                          records={SAMPLES_FILE: "\n".join(self.sample_lines) + "\n"}, tables={"eval/samples": rows})

    def _reference_summary(self) -> dict[str, Any]:
        """The last evaluation's numbers for the run's summary (``final_gold``, ``gold_gain``, ...)."""
        e, nan = self.last_eval, float("nan")
        return {**{f"final_{k}": v for k, v in e.items()}, "gold_gain": e.get("gold", nan) - e.get("sft_gold", nan),
                "gold_gain_greedy": e.get("gold_greedy", nan) - e.get("sft_gold_greedy", nan)}

    def _reference_state(self) -> dict[str, Any]:
        return {"sft_eval": self.sft_eval or {}, "last_eval": self.last_eval, "sample_lines": self.sample_lines}

    def _load_reference_state(self, state: dict[str, Any]) -> None:
        self.sft_eval = dict(state["sft_eval"]) or None
        self.last_eval, self.sample_lines = dict(state["last_eval"]), list(state["sample_lines"])

    def side_by_side(self, prompts: int, samples: int, seed: int) -> dict[str, Any]:
        """The SFT model and the policy on ``prompts`` new prompts (one sampled answer each,
        drawn with ``seed``, and the greedy answer): their mean reward, gold and (the policy's)
        KL, and the first ``samples`` sampled answers of each side by side
        (``rlexp eval RUN --samples N``)."""
        rng = np.random.default_rng([seed, 9])
        prompt_list = (self.task.prompts(prompts, rng) if self.task.has_gold
                       else self.task.draw(self.heldout_prompts, prompts, rng))
        sft, sft_r, _ = self._measure(prompt_list, self._generator(seed, 10), reference=True)
        policy, r, _ = self._measure(prompt_list, self._generator(seed, 11), reference=False)
        rows = [{"prompt": prompt_list[k], "sft_answer": sft_r["texts"][k], "sft_reward": float(sft_r["reward"][k]),
                 "sft_gold": float(sft_r["gold"][k]), "answer": r["texts"][k], "reward": float(r["reward"][k]),
                 "gold": float(r["gold"][k]), "kl": float(r["kl"][k])} for k in range(min(samples, prompts))]
        record = {"prompts": prompts, "seed": seed, "sft": sft, "policy": policy, "samples": rows}
        return _no_nan(record)  # no reward model: its scores are null (strict JSON has no NaN)


def _no_nan(value: Any) -> Any:
    """``value`` with every NaN float (a score no reward model gave) replaced by None."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def _number(value: float | None, width: int, digits: int) -> str:
    """``value`` right-aligned in ``width`` characters; ``-`` for None (no reward model)."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def describe_side_by_side(run_path: Path, record: dict) -> list[str]:
    """``rlexp eval``'s lines for a side-by-side record: the SFT model and the policy, sampled
    and greedy, and the sampled answers next to each other."""
    sft, policy = record["sft"], record["policy"]
    lines = [f"checkpoint: {run_path / record['checkpoint']} ({record.get('unit', 'prompt')} {record['step']})",
             f"prompts:    {record['prompts']} new ones, one sampled answer each and the greedy one, "
             f"seed {record['seed']}",
             f"{'':<12}{'sampled:':<9}{'reward':>7}{'gold':>8}{'KL':>8}{'length':>8}{'ended':>8}   "
             f"{'greedy:':<8}{'reward':>7}{'gold':>8}"]
    for name, m in (("SFT", sft), ("policy", policy)):
        lines.append(f"{name:<12}{'':<9}{_number(m['reward'], 7, 3)}{m['gold']:>8.3f}{m['kl']:>8.3f}"
                     f"{m['response_length']:>8.2f}{m['ended_rate']:>8.2f}   {'':<8}{_number(m['reward_greedy'], 7, 3)}"
                     f"{m['gold_greedy']:>8.3f}")
    lines.append(f"gold gain:  {policy['gold'] - sft['gold']:+.3f} sampled, "
                 f"{policy['gold_greedy'] - sft['gold_greedy']:+.3f} greedy "
                 f"(KL to the SFT model {policy['kl']:.3f} nats per answer)")
    if record["samples"]:
        lines += ["", f"{'prompt':<14}{'SFT answer':<18}{'reward':>7}{'gold':>6}   {'policy answer':<18}{'reward':>7}"
                      f"{'gold':>6}{'KL':>7}"]
        lines += [f"{s['prompt']:<14}{s['sft_answer'][:17]!s:<18}{_number(s['sft_reward'], 7, 2)}{s['sft_gold']:>6.2f}   "
                  f"{s['answer'][:17]!s:<18}{_number(s['reward'], 7, 2)}{s['gold']:>6.2f}{s['kl']:>7.2f}"
                  for s in record["samples"]]
    return lines + [f"recorded in {run_path / 'evals.jsonl'}"]
