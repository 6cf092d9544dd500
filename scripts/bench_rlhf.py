"""RLHF: memory of full fine-tuning against LoRA, and rlexp's GRPO against TRL's GRPOTrainer,
in one invocation (each measurement in its own subprocess, same thread count).

(a) **Memory.** One causal LM (a Llama built from ``--hidden``/``--layers``, random init),
a few SFT steps with AdamW on the task's demonstrations, with every weight trained and with
LoRA (rank 8 on W_q, W_v): trainable parameters, gradient and optimizer-state bytes, bytes
per parameter (weights + gradients + AdamW's two moments, over all parameters) and the
peak memory of the training steps (CPU: the peak resident set above the one before
training; CUDA: ``torch.cuda.max_memory_allocated``). Full fine-tuning in fp32 costs 16
bytes per parameter: 4 for the weight, 4 for its gradient, 8 for AdamW's moments; that is
the course's "16 GB per billion parameters" (mixed precision gets the same 16: 2 + 2 for
bf16 weights and gradients, 12 for fp32 master weights and moments). LoRA keeps 4 bytes per
frozen parameter.

(b) **GRPO.** The same SFT model, reward model, prompts and generation settings: 16 prompts
x 8 answers per rollout, at most 12 answer tokens, temperature 1 over the full vocabulary,
LoRA rank 8 on W_q, W_v, 2 passes of 4 minibatches of 32 answers per rollout (8 optimizer
steps), AdamW lr 2e-3, clip 0.2, beta 0.05 with the k3 KL to the reference (the policy with
its adapters disabled, both), token-level loss over the minibatch (TRL: loss_type=bnpo),
group-normalised advantages, and one reward function for both: the reward model's score of
``<bos> prompt answer`` (with ``<eos>`` when the answer ended), minus 1 for an answer that
never ended. Samples per second: answers generated and learned from per second of the
training loop (rlexp: ``advance()`` calls; TRL: ``trainer.train()``); the reward curves are
the mean reward per rollout. TRL is a bench-only extra (``pip install -e '.[bench]'``).

    python scripts/bench_rlhf.py                       # every part, a small pipeline trained first (~1 min)
    python scripts/bench_rlhf.py --parts dpo rloo --from RUN_DIR
    python scripts/bench_rlhf.py --parts memory --hidden 1024 --layers 12
    python scripts/bench_rlhf.py --parts grpo --rollouts 20 --from RUN_DIR   # RUN_DIR: an experiment=rlhf_arithmetic run
    python scripts/bench_rlhf.py --device cuda

(c) **RLOO** and (d) **DPO** the same way against TRL's ``RLOOTrainer`` and ``DPOTrainer``:
RLOO 16 prompts x 4 answers per rollout, beta 0.05 (the summed k1 KL subtracted from the
reward, as both do), no advantage whitening, the clipped surrogate, 2 passes of 2 minibatches
of 32; DPO one pass over ``--pairs`` of the task's preference pairs (the ones rlexp's
``dpo`` draws for that seed), 32 pairs per step, beta 0.1, the sigmoid loss, lr 2e-3; TRL
with its default (the reference's log-probabilities computed at each step) and with
``precompute_ref_log_probs=True`` (512 pairs per pass, before the first step); rlexp
computes them 512 upcoming pairs at a time, each pair once. Rates: answers (RLOO) or pairs (DPO) per second of the
training loop; the curves: mean reward per rollout, DPO loss per step.

(e) **DPO memory**: three DPO steps on the ``--hidden`` x ``--layers`` Llama, every weight
trained against a frozen copy of the starting model, and LoRA, whose reference is the policy
with its adapters disabled: the bytes of the reference copy (0 with LoRA) and the peak.

Targets: rlexp's GRPO and RLOO >= 1.5x TRL's samples/s; DPO >= 1.5x TRL's pairs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # scripts/machine.py: the CPU model (and GPU) for every figure

ROOT = Path(__file__).resolve().parent.parent
RLEXP = [sys.executable, "-m", "rlexp"]
GRPO = dict(batch_prompts=16, samples_per_prompt=8, max_answer_tokens=12, temperature=1.0, update_epochs=2,
            minibatch_answers=32, lr=2e-3, clip_coef=0.2, kl_coef=0.05, missing_eos_penalty=1.0)
LORA = dict(rank=8, alpha=16.0, target_modules=["q_proj", "v_proj"])
RLOO = dict(batch_prompts=16, samples_per_prompt=4, max_answer_tokens=12, temperature=1.0, update_epochs=2,
            minibatch_answers=32, lr=2e-3, clip_coef=0.2, kl_coef=0.05, missing_eos_penalty=1.0)
DPO = dict(batch_size=32, lr=2e-3, beta=0.1)


# --------------------------------------------------------------------------- workers (one per subprocess)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker_memory(mode: str, hidden: int, layers: int, steps: int, batch: int, device: str) -> dict:
    import numpy as np
    import torch

    from rlexp.lm.model import add_lora, quiet_transformers, tiny_llama
    from rlexp.lm.task import ArithmeticTask
    from rlexp.lm.tokenizer import char_tokenizer

    quiet_transformers()
    torch.manual_seed(0)
    tok = char_tokenizer()
    model = tiny_llama(len(tok), hidden_size=hidden, layers=layers, heads=max(1, hidden // 64),
                       intermediate_size=hidden * 4, max_positions=64, pad_id=tok.pad_token_id,
                       bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)
    if mode == "lora":
        model = add_lora(model, rank=LORA["rank"], alpha=LORA["alpha"], dropout=0.0,
                         target_modules=LORA["target_modules"])
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    pairs = ArithmeticTask().demonstrations(batch, np.random.default_rng(0))
    enc = tok([p + a for p, a in pairs], return_tensors="pt", padding=True).to(device)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_bytes()
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    total = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if torch.is_tensor(t) and t.dim() > 0)
    return {"mode": mode, "parameters": total, "trainable": sum(p.numel() for p in params), "weight_bytes": weights,
            "grad_bytes": grads, "optimizer_bytes": state, "bytes_per_parameter": (weights + grads + state) / total,
            "peak_bytes": max(peak, 0), "peak_kind": "cuda max allocated" if device.startswith("cuda") else "peak RSS"}


def _reward_fn(rm, tok, penalty: float, device: str):
    """One reward for both libraries: the reward model on <bos> prompt answer [<eos>]; -penalty if no <eos>."""
    import torch

    from rlexp.lm.sampling import sequence_scores

    @torch.no_grad()
    def score(prompts: list[str], completion_ids: list[list[int]]) -> list[float]:
        rows = []
        for prompt, ids in zip(prompts, completion_ids):
            ids = list(ids)
            ended = tok.eos_token_id in ids
            if ended:
                ids = ids[:ids.index(tok.eos_token_id) + 1]
            rows.append((tok(prompt)["input_ids"] + ids, ended))
        width = max(len(r) for r, _ in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, _) in enumerate(rows):
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
        ids, mask = ids.to(device), mask.to(device)
        out = sequence_scores(rm, ids, mask).cpu()  # the scores rlexp's RL stages give
        return [float(s) - (0.0 if ended else penalty) for s, (_, ended) in zip(out, rows)]

    return score


def _rlexp_rl(algo: str, settings: dict, run: str, rollouts: int, seed: int, device: str) -> dict:
    """rlexp's ``algo`` (grpo, rloo) on the run's SFT and reward models, ``rollouts`` rollouts timed."""
    from rlexp.build import build_trainer, seed_everything
    from rlexp.config import compose

    args = [f"algo={algo}", "env=arithmetic", f"model.from_run={run}/2_sft", f"reward.from_run={run}/3_reward_model",
            f"seed={seed}", "logger=none", f"device={'cuda' if device.startswith('cuda') else 'cpu'}",
            f"algo.total_prompts={rollouts * settings['batch_prompts']}",
            *(f"algo.{k}={v}" for k, v in settings.items()), f"lora.rank={LORA['rank']}", f"lora.alpha={LORA['alpha']}",
            f"lora.target_modules=[{','.join(LORA['target_modules'])}]"]
    seed_everything(seed)
    trainer = build_trainer(compose(args))  # the config exactly as `rlexp train` composes it
    trainer.start(resumed=False)
    rewards = []
    started = time.perf_counter()
    for _ in range(rollouts):
        trainer.advance()
        s = trainer.stats
        rewards.append(s["rlhf/reward"][-1] - settings["missing_eos_penalty"] * (1 - s["rlhf/ended_rate"][-1]))
    _sync(device)
    seconds = time.perf_counter() - started
    answers = rollouts * settings["batch_prompts"] * settings["samples_per_prompt"]
    return {"lib": "rlexp", "seconds": seconds, "samples_per_s": answers / seconds, "curve": rewards}


def _trl_rl(kind: str, settings: dict, run: str, rollouts: int, seed: int, device: str) -> dict:
    """TRL's ``GRPOTrainer`` or ``RLOOTrainer`` (``kind``) on the same models, prompts and settings."""
    import numpy as np
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from rlexp.lm.model import quiet_transformers
    from rlexp.lm.task import ArithmeticTask

    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(f"{run}/2_sft/model")
    policy = AutoModelForCausalLM.from_pretrained(f"{run}/2_sft/model")
    rm = AutoModelForSequenceClassification.from_pretrained(f"{run}/3_reward_model/model", num_labels=1).eval().to(device)
    score = _reward_fn(rm, tok, settings["missing_eos_penalty"], device)

    def reward(prompts, completions, completion_ids, **_):
        return score(prompts, completion_ids)

    g, b = settings["samples_per_prompt"], settings["batch_prompts"]
    prompts = ArithmeticTask().prompts(rollouts * b, np.random.default_rng([seed, 2]))
    steps_per_rollout = settings["update_epochs"] * (g * b // settings["minibatch_answers"])
    own = (dict(loss_type="bnpo", scale_rewards="group") if kind == "grpo"  # GRPO: token-level loss, group-normalised
           else dict(normalize_advantages=False))  # RLOO: the leave-one-out advantage as it is
    args = getattr(trl, f"{kind.upper()}Config")(
        output_dir=tempfile.mkdtemp(), seed=seed, use_cpu=not device.startswith("cuda"), bf16=False,
        report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
        learning_rate=settings["lr"], lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        per_device_train_batch_size=settings["minibatch_answers"], gradient_accumulation_steps=1,
        steps_per_generation=g * b // settings["minibatch_answers"], num_iterations=settings["update_epochs"],
        num_generations=g, max_completion_length=settings["max_answer_tokens"], temperature=settings["temperature"],
        top_k=0, top_p=1.0, beta=settings["kl_coef"], epsilon=settings["clip_coef"],
        mask_truncated_completions=False, max_steps=rollouts * steps_per_rollout, shuffle_dataset=False,
        disable_dropout=True, log_completions=False, dataloader_num_workers=0, **own)
    peft = LoraConfig(r=LORA["rank"], lora_alpha=LORA["alpha"], target_modules=LORA["target_modules"],
                      lora_dropout=0.0, task_type="CAUSAL_LM")
    trainer = getattr(trl, f"{kind.upper()}Trainer")(
        model=policy, reward_funcs=reward, args=args, train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tok, peft_config=peft)
    started = time.perf_counter()
    trainer.train()
    _sync(device)
    seconds = time.perf_counter() - started
    rewards = [float(h["reward"]) for h in trainer.state.log_history if "reward" in h]  # one per generation
    return {"lib": "trl", "seconds": seconds, "samples_per_s": rollouts * b * g / seconds, "curve": rewards}


def worker_rlexp_grpo(run: str, rollouts: int, seed: int, device: str) -> dict:
    return _rlexp_rl("grpo", GRPO, run, rollouts, seed, device)


def worker_trl_grpo(run: str, rollouts: int, seed: int, device: str) -> dict:
    return _trl_rl("grpo", GRPO, run, rollouts, seed, device)


def worker_rlexp_rloo(run: str, rollouts: int, seed: int, device: str) -> dict:
    return _rlexp_rl("rloo", RLOO, run, rollouts, seed, device)


def worker_trl_rloo(run: str, rollouts: int, seed: int, device: str) -> dict:
    return _trl_rl("rloo", RLOO, run, rollouts, seed, device)


def worker_rlexp_dpo(run: str, pairs: int, seed: int, device: str) -> dict:
    from rlexp.build import build_trainer, seed_everything
    from rlexp.config import compose

    args = ["algo=dpo", "env=arithmetic", f"model.from_run={run}/2_sft", f"seed={seed}", "logger=none",
            f"device={'cuda' if device.startswith('cuda') else 'cpu'}", f"algo.total_pairs={pairs}",
            f"algo.dataset_pairs={pairs}", *(f"algo.{k}={v}" for k, v in DPO.items()), f"lora.rank={LORA['rank']}",
            f"lora.alpha={LORA['alpha']}", f"lora.target_modules=[{','.join(LORA['target_modules'])}]"]
    seed_everything(seed)
    trainer = build_trainer(compose(args))
    trainer.start(resumed=False)
    losses = []
    started = time.perf_counter()
    while trainer.progress < pairs:
        losses.append(trainer.advance()["loss/dpo"])
    _sync(device)
    seconds = time.perf_counter() - started
    return {"lib": "rlexp", "seconds": seconds, "pairs_per_s": pairs / seconds, "curve": losses}


def worker_trl_dpo(run: str, pairs: int, seed: int, device: str, precompute: bool = False) -> dict:
    import numpy as np
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from rlexp.lm.model import quiet_transformers
    from rlexp.lm.task import ArithmeticTask

    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(f"{run}/2_sft/model")
    policy = AutoModelForCausalLM.from_pretrained(f"{run}/2_sft/model")
    data = ArithmeticTask().preference_pairs(pairs, np.random.default_rng([seed, 0]))  # rlexp's training pairs
    dataset = Dataset.from_dict({"prompt": [p.prompt for p in data], "chosen": [p.chosen for p in data],
                                 "rejected": [p.rejected for p in data]})
    args = DPOConfig(
        output_dir=tempfile.mkdtemp(), seed=seed, use_cpu=not device.startswith("cuda"), bf16=False,
        report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True, learning_rate=DPO["lr"],
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        per_device_train_batch_size=DPO["batch_size"], gradient_accumulation_steps=1, beta=DPO["beta"],
        num_train_epochs=1, max_length=64, disable_dropout=True, dataloader_num_workers=0, dataset_num_proc=None,
        precompute_ref_log_probs=precompute, precompute_ref_batch_size=512)
    peft = LoraConfig(r=LORA["rank"], lora_alpha=LORA["alpha"], target_modules=LORA["target_modules"],
                      lora_dropout=0.0, task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=policy, args=args, train_dataset=dataset, processing_class=tok, peft_config=peft)
    started = time.perf_counter()
    trainer.train()
    _sync(device)
    seconds = time.perf_counter() - started
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return {"lib": "trl, precomputed reference" if precompute else "trl", "seconds": seconds,
            "pairs_per_s": pairs / seconds, "curve": losses}


def worker_trlpre_dpo(run: str, pairs: int, seed: int, device: str) -> dict:
    """TRL's DPOTrainer with ``precompute_ref_log_probs=True`` (inside ``train()``, so timed)."""
    return worker_trl_dpo(run, pairs, seed, device, precompute=True)


def worker_dpo_memory(mode: str, hidden: int, layers: int, batch: int, device: str) -> dict:
    """DPO for 3 steps on a model built at ``hidden`` x ``layers``: with LoRA (the reference is the
    policy with its adapters off) or every weight (the reference a frozen copy)."""
    import torch

    from rlexp.build import build_trainer, seed_everything
    from rlexp.config import compose

    args = ["algo=dpo", "env=arithmetic", "logger=none", f"device={'cuda' if device.startswith('cuda') else 'cpu'}",
            f"model.hidden_size={hidden}", f"model.layers={layers}", f"model.heads={max(1, hidden // 64)}",
            f"model.intermediate_size={hidden * 4}", "model.max_positions=64", f"algo.batch_size={batch}",
            "algo.dataset_pairs=256", "algo.total_pairs=100000", f"lora.enabled={'true' if mode == 'lora' else 'false'}"]
    cfg = compose(args)
    seed_everything(0)
    before = torch.cuda.memory_allocated() if device.startswith("cuda") else _rss_bytes()
    trainer = build_trainer(cfg)
    for _ in range(3):
        trainer.advance()
    _sync(device)
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - before
    copy = 0 if trainer.reference is None else sum(p.numel() * p.element_size() for p in trainer.reference.parameters())
    weights = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
    return {"mode": mode, "weight_bytes": weights, "reference_copy_bytes": copy, "peak_bytes": max(peak, 0),
            "peak_kind": "cuda max allocated" if device.startswith("cuda") else "peak RSS"}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# --------------------------------------------------------------------------- the invocation


def _subprocess(args: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": f"{ROOT}:{ROOT / 'scripts'}", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pipeline(directory: Path, seed: int, device: str) -> Path:
    """A small pretrain -> sft -> reward_model pipeline for the GRPO comparison (about a minute on 2 cores)."""
    run = directory / "pipeline"
    command = [*RLEXP, "train", "experiment=rlhf_arithmetic", f"seed={seed}", "logger=none", "logger.progress=none",
               f"device={'cuda' if device.startswith('cuda') else 'cpu'}", "algo=grpo", "algo.total_prompts=16",
               "algo.batch_prompts=16", "algo.eval_prompts=16",
               'pipeline.pretrain=["algo.total_examples=60000","algo.dataset_examples=20000"]',
               'pipeline.sft=["algo.total_examples=20000"]',
               'pipeline.reward_model=["algo.total_pairs=20000","lora.rank=16",'
               '"lora.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]"]',
               f"hydra.run.dir={run}"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"the pipeline failed:\n{out.stderr[-3000:]}")
    return run


def _side_by_side(rows: list[dict], rate: str, unit: str, curve: str, every: int = 1) -> None:
    """Both libraries' speed and curve, and the ratio against the 1.5x target."""
    print(f"{'':<28}{'seconds':>10}{unit:>12}   {curve}")
    for r in rows:
        print(f"{r['lib']:<28}{r['seconds']:>10.1f}{r[rate]:>12.1f}   "
              + " ".join(f"{x:.3f}" for x in r["curve"][::every]))
    ours, *peers = rows
    for peer in peers:
        print(f"rlexp / {peer['lib']} {unit}: {ours[rate] / peer[rate]:.2f}x (target >= 1.5x)")


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["memory", "grpo", "rloo", "dpo", "dpo_memory"],
                        choices=["memory", "grpo", "rloo", "dpo", "dpo_memory"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--hidden", type=int, default=512, help="memory: the model's width")
    parser.add_argument("--layers", type=int, default=8, help="memory: the model's blocks")
    parser.add_argument("--batch", type=int, default=32, help="memory: sequences per step")
    parser.add_argument("--rollouts", type=int, default=12, help="grpo: rollouts of 16 prompts x 8 answers; rloo: x 4")
    parser.add_argument("--pairs", type=int, default=2048, help="dpo: preference pairs (one pass, 32 per step)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--from", dest="source", default=None,
                        help="grpo: a finished experiment=rlhf_arithmetic run (its 2_sft and 3_reward_model)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "memory":
            mode, hidden, layers, batch = rest
            result = worker_memory(mode, int(hidden), int(layers), 3, int(batch), args.device)
        elif kind == "dpo_memory":
            mode, hidden, layers, batch = rest
            result = worker_dpo_memory(mode, int(hidden), int(layers), int(batch), args.device)
        else:  # rlexp_grpo, trl_rloo, ...: (the run, the rollouts or pairs)
            run, count = rest
            result = globals()[f"worker_{kind}"](run, int(count), args.seed, args.device)
        print(json.dumps(result))
        return

    print(f"machine: {machine.describe(args.device)}; {args.threads} torch threads per subprocess")
    if "memory" in args.parts:
        rows = [_subprocess(["--device", args.device, "--worker", "memory", mode, str(args.hidden), str(args.layers),
                             str(args.batch)], args.threads) for mode in ("full", "lora")]
        print(f"\n(a) memory: Llama hidden {args.hidden}, {args.layers} layers, fp32, AdamW, {args.batch} sequences "
              f"per step ({rows[0]['parameters']:,} parameters)")
        print(f"{'':<16}{'trainable':>14}{'share':>8}{'gradients':>13}{'optimizer':>13}{'bytes/param':>13}"
              f"{'peak (' + rows[0]['peak_kind'] + ')':>26}")
        for r in rows:
            name = "full fine-tune" if r["mode"] == "full" else f"LoRA r={LORA['rank']} q,v"
            print(f"{name:<16}{r['trainable']:>14,}{r['trainable'] / r['parameters']:>8.2%}{_mib(r['grad_bytes']):>13}"
                  f"{_mib(r['optimizer_bytes']):>13}{r['bytes_per_parameter']:>13.2f}{_mib(r['peak_bytes']):>26}")
        full, lora = rows
        print(f"full fine-tuning: {full['bytes_per_parameter']:.1f} bytes per parameter = "
              f"{full['bytes_per_parameter']:.0f} GB per billion parameters (the course: 16); LoRA: "
              f"{lora['bytes_per_parameter']:.2f}; peak memory of training {full['peak_bytes'] / max(lora['peak_bytes'], 1):.1f}x "
              "lower with LoRA")
    tmp = tempfile.TemporaryDirectory()
    needs_run = {"grpo", "rloo", "dpo"} & set(args.parts)
    run = (Path(args.source) if args.source else _pipeline(Path(tmp.name), args.seed, args.device)) if needs_run else None
    if "grpo" in args.parts:
        results = [_subprocess(["--device", args.device, "--seed", str(args.seed), "--worker", f"{lib}_grpo",
                                str(run), str(args.rollouts)], args.threads) for lib in ("rlexp", "trl")]
        ours, trl = results
        print(f"\n(b) GRPO, {args.rollouts} rollouts of {GRPO['batch_prompts']} prompts x {GRPO['samples_per_prompt']} "
              f"answers, the same SFT model, reward model, prompts and settings")
        print(f"{'':<8}{'seconds':>10}{'samples/s':>12}   reward per rollout")
        for r in results:
            print(f"{r['lib']:<8}{r['seconds']:>10.1f}{r['samples_per_s']:>12.1f}   "
                  + " ".join(f"{x:.2f}" for x in r["curve"]))
        print(f"rlexp / TRL samples per second: {ours['samples_per_s'] / trl['samples_per_s']:.2f}x (target >= 1.5x); "
              f"mean reward of the last third: rlexp {sum(ours['curve'][-(len(ours['curve']) // 3 or 1):]) / (len(ours['curve']) // 3 or 1):.2f}, "
              f"TRL {sum(trl['curve'][-(len(trl['curve']) // 3 or 1):]) / (len(trl['curve']) // 3 or 1):.2f}")
    if "rloo" in args.parts:
        rows = [_subprocess(["--device", args.device, "--seed", str(args.seed), "--worker", f"{lib}_rloo", str(run),
                             str(args.rollouts)], args.threads) for lib in ("rlexp", "trl")]
        print(f"\n(c) RLOO, {args.rollouts} rollouts of {RLOO['batch_prompts']} prompts x {RLOO['samples_per_prompt']} "
              f"answers, beta {RLOO['kl_coef']} (the KL in the reward), the same SFT model, reward model and prompts")
        _side_by_side(rows, "samples_per_s", "samples/s", "reward per rollout")
    if "dpo" in args.parts:
        rows = [_subprocess(["--device", args.device, "--seed", str(args.seed), "--worker", f"{lib}_dpo", str(run),
                             str(args.pairs)], args.threads) for lib in ("rlexp", "trl", "trlpre")]
        print(f"\n(d) DPO, one pass over {args.pairs} preference pairs of the task, {DPO['batch_size']} per step, "
              f"beta {DPO['beta']}, lr {DPO['lr']}, LoRA r={LORA['rank']} q,v, the same SFT model")
        _side_by_side(rows, "pairs_per_s", "pairs/s", "loss per step (every 8th)", every=8)
    tmp.cleanup()
    if "dpo_memory" in args.parts:
        rows = [_subprocess(["--device", args.device, "--worker", "dpo_memory", mode, str(args.hidden),
                             str(args.layers), str(args.batch)], args.threads) for mode in ("full", "lora")]
        print(f"\n(e) DPO memory: Llama hidden {args.hidden}, {args.layers} layers, fp32, {args.batch} pairs per step")
        print(f"{'':<34}{'weights':>12}{'reference copy':>16}{'peak (' + rows[0]['peak_kind'] + ')':>26}")
        for r in rows:
            name = ("every weight, frozen reference copy" if r["mode"] == "full"
                    else f"LoRA r={LORA['rank']}, adapters off = reference")
            print(f"{name:<34}{_mib(r['weight_bytes']):>12}{_mib(r['reference_copy_bytes']):>16}"
                  f"{_mib(r['peak_bytes']):>26}")


if __name__ == "__main__":
    main()
