"""Language-model stages end to end: pretrain, then SFT with LoRA from it; the exported model
and adapters; bad input as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlexp.loggers.jsonl import read_metrics
from rlexp.train import run
from tests.conftest import cli, compose_train

pytestmark = pytest.mark.slow  # learning, subprocesses or whole pipelines: left out of make test-fast

QUIET = ["logger=none", "logger.progress=none", "device.torch_threads=1"]
PRETRAIN = ["algo=pretrain", "env=arithmetic", "algo.total_examples=2560", "algo.batch_size=64",
            "algo.log_interval_examples=640", "algo.eval_interval_examples=1280", "algo.eval_prompts=64", *QUIET]
SFT = ["algo=sft", "env=arithmetic", "algo.total_examples=2560", "algo.batch_size=64", "algo.log_interval_examples=640",
       "algo.eval_interval_examples=1280", "algo.eval_prompts=64", "algo.lr=1e-2", *QUIET]
RM = ["algo=reward_model", "env=arithmetic", "algo.total_pairs=2048", "algo.dataset_pairs=1024", "algo.eval_pairs=256",
      "algo.log_interval_pairs=512", "algo.eval_interval_pairs=1024", *QUIET]


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    threads = torch.get_num_threads()
    try:
        pre = run(compose_train(PRETRAIN), root / "pretrain")
        sft = run(compose_train([*SFT, f"model.from_run={root / 'pretrain'}"]), root / "sft")
        rm = run(compose_train([*RM, f"model.from_run={root / 'sft'}"]), root / "rm")
    finally:
        torch.set_num_threads(threads)
    return root, pre, sft, rm


def test_pretrain_learns_the_corpus_and_exports_a_model(stages):
    root, pre, _, _ = stages
    assert pre["examples"] == 2560 and pre["unit"] == "examples" and not pre["lora"]
    evals = [r["eval/loss"] for r in read_metrics(root / "pretrain" / "metrics.jsonl") if "eval/loss" in r]
    assert len(evals) == 2 and evals[-1] < evals[0] < 3.8  # below log(vocabulary size) ~ 4.4 and falling
    assert (root / "pretrain" / "model" / "config.json").exists() and not (root / "pretrain" / "adapter").exists()
    rows = read_metrics(root / "pretrain" / "metrics.jsonl")
    assert any("perf/tokens_per_s" in r and "train/loss" in r for r in rows)


def test_sft_trains_few_parameters_and_its_adapter_loads_with_peft(stages):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root, _, sft, _ = stages
    assert sft["lora"] and sft["trainable_parameters"] / sft["parameters"] < 0.05
    rows = read_metrics(root / "sft" / "metrics.jsonl")
    final = [r for r in rows if "eval/gold" in r][-1]
    assert final["eval/gold_greedy"] == sft["eval_score_mean"] and 0 <= final["eval/correct_rate_greedy"] <= 1
    assert 0 <= final["eval/gold"] <= 1 and 0 <= final["eval/ended_rate"] <= 1  # one sampled answer per prompt
    base = AutoModelForCausalLM.from_pretrained(root / "pretrain" / "model")
    adapted = PeftModel.from_pretrained(base, root / "sft" / "adapter").eval()
    merged = AutoModelForCausalLM.from_pretrained(root / "sft" / "model").eval()
    ids = torch.tensor([[1, 10, 11, 12, 13]])
    with torch.no_grad():
        assert (adapted(ids).logits - merged(ids).logits).abs().max() < 1e-5


EXPORT_CHECK = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

model_dir, adapter_dir, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
gen = GenerationConfig.from_pretrained(model_dir)

def answer(batch):
    enc = tok(batch, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

print(json.dumps({"padding_side": tok.padding_side, "adapter_padding_side": AutoTokenizer.from_pretrained(adapter_dir).padding_side,
                  "pad": [gen.pad_token_id, tok.pad_token_id], "eos": [gen.eos_token_id, tok.eos_token_id],
                  "batched": answer(prompts), "single": [answer([p])[0] for p in prompts]}))
"""


def test_an_exported_model_answers_a_batch_as_it_answers_one_prompt_at_a_time(stages):
    """What a user does with an export, in a fresh process: ``AutoTokenizer`` pads on the left,
    ``generate`` needs no pad or end token given, batched answers equal one-at-a-time answers,
    and their gold is the SFT stage's own greedy evaluation (the same prompts)."""
    import json
    import subprocess
    import sys

    import numpy as np

    from rlexp.lm.task import ArithmeticTask

    root = stages[0]
    task = ArithmeticTask()
    prompts = [p for p, _ in task.demonstrations(64, np.random.default_rng([1, 1]))]  # the SFT run's held-out prompts
    out = subprocess.run([sys.executable, "-c", EXPORT_CHECK, str(root / "sft" / "model"), str(root / "sft" / "adapter"),
                          json.dumps(prompts)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["padding_side"] == got["adapter_padding_side"] == "left"
    assert got["pad"][0] == got["pad"][1] and got["eos"][0] == got["eos"][1]
    assert got["batched"] == got["single"]
    gold = np.mean([task.utility(p, a) for p, a in zip(prompts, got["batched"])])
    final = [r for r in read_metrics(root / "sft" / "metrics.jsonl") if "eval/gold_greedy" in r][-1]
    assert abs(gold - final["eval/gold_greedy"]) < 0.02, (gold, final["eval/gold_greedy"])  # merged weights: rounding


def test_the_reward_model_ranks_held_out_pairs_better_than_chance(stages):
    from transformers import AutoModelForSequenceClassification

    root, _, _, rm = stages
    assert rm["pairs"] == 2048 and rm["lora"] and rm["trainable_parameters"] / rm["parameters"] < 0.05
    final = [r for r in read_metrics(root / "rm" / "metrics.jsonl") if "eval/rm_accuracy" in r][-1]
    assert 0.6 < final["eval/rm_accuracy"] <= 1 and 0.9 < final["eval/rm_best_accuracy"] < 1
    assert any("loss/reward_model" in r for r in read_metrics(root / "rm" / "metrics.jsonl"))
    scorer = AutoModelForSequenceClassification.from_pretrained(root / "rm" / "model").eval()
    with torch.no_grad():
        assert scorer(torch.tensor([[1, 10, 11, 2]])).logits.shape == (1, 1)  # a scalar per sequence


@pytest.mark.parametrize("args, message", [
    (["algo=sft", "env=cartpole"], "algo=sft trains a language model on a task; env=CartPole-v1 is not one"),
    (["algo=dqn", "env=arithmetic"], "algo=dqn steps gymnasium envs"),
    (["algo=sft", "env=arithmetic", "lora.rank=0"], "lora.rank must be >= 1, got 0"),
    (["algo=sft", "env=arithmetic", "lora.target_modules=[c_attn]"], "lora.target_modules: c_attn not in the model"),
    (["algo=sft", "env=arithmetic", "model.name_or_path=someone/no-such-model"], "not in the local Hugging Face cache"),
    (["algo=sft", "env=arithmetic", "total_steps=100"], "total_steps counts agent steps of gym envs; algo=sft counts "
                                                        "examples: set algo.total_examples"),
    (["algo=pretrain", "env=arithmetic", "lora.rank=4"], "lora.rank: this run's config has no lora section"),
    (["algo=dqn", "model.layers=4"], "model.layers: this run's config has no model section"),
    (["algo=dpo", "algo.loss=hinge"], "algo.loss='hinge' is not valid; choose one of: sigmoid, ipo"),
    (["algo=dpo", "algo.label_smoothing=0.5"], "algo.label_smoothing must be in [0, 0.5)"),
    (["algo=dpo", "algo.loss=ipo", "algo.label_smoothing=0.1"], "IPO has none"),
    (["algo=dpo", "algo.beta=0"], "algo.beta must be > 0"),
])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, args, message):
    run_dir = tmp_path / "run"
    code, out, err = cli(["train", *args, *QUIET, f"hydra.run.dir={run_dir}"])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not run_dir.exists()


def test_from_run_must_be_a_finished_run_of_an_earlier_stage(stages, tmp_path):
    root, _, _, _ = stages
    az = tmp_path / "az"
    code, _, err = cli(["train", "algo=alphazero", "env=tictactoe", "algo.total_games=4", "algo.concurrent_games=4",
                        "algo.simulations=2", "network.hidden_sizes=[8]", *QUIET, f"hydra.run.dir={az}"])
    assert code == 0, err
    code, _, err = cli(["train", *SFT, f"model.from_run={az}", f"hydra.run.dir={tmp_path / 'bad'}"])
    assert code == 2 and "is a run of algo=alphazero; algo=sft starts from a run of algo=pretrain or sft" in err
    code, _, err = cli(["train", *PRETRAIN, f"model.from_run={root / 'sft'}", f"hydra.run.dir={tmp_path / 'bad2'}"])
    assert code == 2 and "algo=pretrain starts from a run of algo=pretrain" in err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


# --------------------------------------------------------------------------- the RL stage

RL = ["env=arithmetic", "algo.total_prompts=384", "algo.batch_prompts=32", "algo.log_interval_prompts=32",
      "algo.eval_interval_prompts=192", "algo.eval_prompts=64", "algo.samples_logged=4", *QUIET]


def _rl(stages, tmp_path, algo, *extra):
    root = stages[0]
    args = [f"algo={algo}", *RL, f"model.from_run={root / 'sft'}", f"reward.from_run={root / 'rm'}", *extra]
    run_dir = tmp_path / algo
    return run(compose_train(args), run_dir), run_dir


@pytest.mark.parametrize("algo, extra", [("rlhf_ppo", []), ("grpo", ["algo.batch_prompts=8", "algo.minibatch_answers=32", "algo.log_interval_prompts=8"]),
                                         ("rloo", ["algo.batch_prompts=16", "algo.minibatch_answers=32",
                                                   "algo.log_interval_prompts=16"]),
                                         ("rlhf_ppo", ["lora.enabled=false", "algo.lr=3e-4"])],
                         ids=["ppo_lora", "grpo_lora", "rloo_lora", "ppo_full"])
def test_the_rl_stage_starts_at_kl_zero_raises_the_reward_and_logs_samples(stages, tmp_path, algo, extra):
    import json

    summary, run_dir = _rl(stages, tmp_path, algo, *extra)
    rows = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in rows if "rlhf/kl" in r]
    assert train[0]["rlhf/kl"] == 0.0  # the first rollout: the policy is the reference, exactly
    for key in ("rlhf/reward", "rlhf/gold", "rlhf/entropy", "rlhf/response_length", "perf/tokens_per_s",
                "loss/policy", "rlhf/kl_coef"):
        assert key in train[-1], key
    assert ("loss/value" in train[-1]) == (algo == "rlhf_ppo") and ("loss/kl" in train[-1]) == (algo == "grpo")
    assert train[-1]["rlhf/kl"] > 0
    evals = [r for r in rows if "eval/gold" in r]
    assert len(evals) == 2 and evals[-1]["eval/reward"] > evals[-1]["eval/sft_reward"]  # it learns the proxy
    assert summary["final_sft_gold"] == evals[-1]["eval/sft_gold"] and summary["prompts"] == 384
    for mode in ("", "_greedy"):  # one sampled answer per prompt, and the greedy answer, for both models
        assert evals[-1][f"eval/gold_gain{mode}"] == evals[-1][f"eval/gold{mode}"] - evals[-1][f"eval/sft_gold{mode}"]
        assert summary[f"gold_gain{mode}"] == summary[f"final_gold{mode}"] - summary[f"final_sft_gold{mode}"]
    # The SFT model's greedy gold, measured by the RL stage on the same 64 prompts its own run
    # evaluated, is the SFT run's figure: one generation routine (the export's merged weights
    # round differently from the adapters, hence the tolerance of one answer).
    sft_final = [r for r in read_metrics(stages[0] / "sft" / "metrics.jsonl") if "eval/gold_greedy" in r][-1]
    assert abs(evals[-1]["eval/sft_gold_greedy"] - sft_final["eval/gold_greedy"]) <= 1 / 64 + 1e-9
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and {"prompt", "answer", "sft_answer", "reward", "gold", "kl", "answer_greedy",
                                  "sft_answer_greedy"} <= set(samples[0])
    assert (run_dir / "model" / "config.json").exists() and (run_dir / "adapter").exists() == ("lora.enabled=false" not in extra)


def test_lora_base_weights_stay_bit_identical_and_the_reference_is_the_base(stages, tmp_path):
    from safetensors.torch import load_file

    root = stages[0]
    summary, run_dir = _rl(stages, tmp_path, "rlhf_ppo", "algo.total_prompts=64")
    assert summary["trainable_parameters"] / summary["parameters"] < 0.05
    state = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["trainer"]["model"]
    sft = load_file(root / "sft" / "model" / "model.safetensors")
    for name, tensor in sft.items():
        key = "base_model.model." + name.replace(".weight", ".base_layer.weight") if any(
            t in name for t in ("q_proj", "v_proj")) else "base_model.model." + name
        assert torch.equal(state[key], tensor), name


def test_the_rl_stage_refuses_a_wrong_reward_model_in_one_line(stages, tmp_path):
    import shutil

    from rlexp.lm.tokenizer import char_tokenizer

    root = stages[0]
    base = ["train", "algo=rlhf_ppo", *RL, f"model.from_run={root / 'sft'}"]
    code, _, err = cli([*base, f"hydra.run.dir={tmp_path / 'a'}"])
    assert code == 2 and "algo=rlhf_ppo learns from a reward model: set reward.from_run=RM_RUN" in err
    code, _, err = cli([*base, f"reward.from_run={root / 'sft'}", f"hydra.run.dir={tmp_path / 'b'}"])
    assert code == 2 and "is a run of algo=sft; it must be a run of algo=reward_model" in err
    other = tmp_path / "other_rm"
    shutil.copytree(root / "rm", other)
    char_tokenizer("0123456789+=:QA ").save_pretrained(other / "model")
    code, _, err = cli([*base, f"reward.from_run={other}", f"hydra.run.dir={tmp_path / 'c'}"])
    assert code == 2 and "the reward model's tokenizer (20 tokens) is not the policy's" in err, err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli(["train", "algo=grpo", *RL, "algo.samples_per_prompt=1", f"hydra.run.dir={tmp_path / 'd'}"])
    assert code == 2 and "algo.samples_per_prompt must be >= 2 for grpo" in err
    code, _, err = cli([*base, f"reward.from_run={root / 'rm'}", "algo.kl_estimator=k2", f"hydra.run.dir={tmp_path / 'e'}"])
    assert code == 2 and "algo.kl_estimator='k2' is not valid; choose one of: k1, k3" in err
    assert not any((tmp_path / d).exists() for d in "abcde")


def test_one_command_runs_every_stage_each_in_its_own_run_dir(tmp_path):
    import json

    run_dir = tmp_path / "pipe"
    code, out, err = cli(["train", "experiment=rlhf_arithmetic", "algo.total_prompts=64", "algo.batch_prompts=32",
                          "algo.log_interval_prompts=32", "algo.eval_prompts=32", "env.max_operand=9",
                          'pipeline.pretrain=["algo.total_examples=640","algo.eval_prompts=32"]',
                          'pipeline.sft=["algo.total_examples=320","algo.eval_prompts=32"]',
                          'pipeline.reward_model=["algo.total_pairs=320","algo.eval_pairs=64"]',
                          *QUIET, f"hydra.run.dir={run_dir}"])
    assert code == 0, err
    stages = json.loads((run_dir / "pipeline.json").read_text())["stages"]
    assert [s["algo"] for s in stages] == ["pretrain", "sft", "reward_model", "rlhf_ppo"]
    for k, s in enumerate(stages, start=1):
        assert s["run_dir"] == str(run_dir / f"{k}_{s['algo']}") and (Path(s["run_dir"]) / "model").is_dir()
    from rlexp.runs import load_run_config

    sft, ppo = load_run_config(run_dir / "2_sft"), load_run_config(run_dir / "4_rlhf_ppo")
    assert sft.model.from_run == str(run_dir / "1_pretrain") and sft.env.max_operand == 9 and sft.algo.total_examples == 320
    assert ppo.model.from_run == str(run_dir / "2_sft") and ppo.reward.from_run == str(run_dir / "3_reward_model")
    assert "model.from_run=" in (run_dir / "3_reward_model" / "command.txt").read_text()
    last = (run_dir / "4_rlhf_ppo" / "command.txt").read_text()  # reruns the last stage alone
    assert "experiment=" not in last and "pipeline" not in last and ppo.pipeline == {}
    assert all(x in last for x in ("algo=rlhf_ppo", "env=arithmetic", "algo.total_prompts=64", "env.max_operand=9",
                                   "reward.from_run="))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_launch_trains_data_parallel_on_two_cpu_processes(stages, tmp_path):
    """`accelerate launch` with two CPU processes (gloo): each takes half of every batch, the
    gradients are averaged, process 0 writes the run; DPO's result matches one process's run."""
    import subprocess
    import sys

    root = stages[0]
    launch = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()), "-m", "rlexp", "train"]
    grpo = ["algo=grpo", *RL, "algo.batch_prompts=8", "algo.minibatch_answers=32", "algo.total_prompts=64",
            "algo.log_interval_prompts=8",
            f"model.from_run={root / 'sft'}", f"reward.from_run={root / 'rm'}", "device=cpu"]
    dpo = [*DPO, "algo.total_pairs=512", "algo.dataset_pairs=256", "algo.eval_interval_pairs=0",
           f"model.from_run={root / 'sft'}", "device=cpu"]
    for name, args in (("grpo", grpo), ("dpo", dpo)):
        out = subprocess.run([*launch, *args, f"hydra.run.dir={tmp_path / name}"], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
    summary = __import__("json").loads((tmp_path / "grpo" / "summary.json").read_text())
    assert summary["prompts"] == 64 and (tmp_path / "grpo" / "model" / "config.json").exists()
    rows = read_metrics(tmp_path / "grpo" / "metrics.jsonl")
    assert [r for r in rows if "rlhf/kl" in r][0]["rlhf/kl"] == 0.0
    single = run(compose_train([*dpo]), tmp_path / "dpo_single")  # one process, the same batches
    final = {}
    for name in ("dpo", "dpo_single"):
        final[name] = [r for r in read_metrics(tmp_path / name / "metrics.jsonl") if "eval/loss" in r][-1]
    assert single["pairs"] == 512 and abs(final["dpo"]["eval/loss"] - final["dpo_single"]["eval/loss"]) < 0.02, final
    assert abs(final["dpo"]["eval/rewards/margins"] - final["dpo_single"]["eval/rewards/margins"]) < 0.05, final


def test_eval_shows_the_policy_beside_the_sft_model_and_the_report_draws_gold_against_kl(stages, tmp_path):
    import json

    root = stages[0]
    for seed in (1, 2):
        _rl(stages, tmp_path / f"s{seed}", "rlhf_ppo", f"seed={seed}", "algo.total_prompts=64")
    run_dir = tmp_path / "s1" / "rlhf_ppo"
    code, out, err = cli(["eval", str(run_dir), "--samples", "3", "--prompts", "32"])
    assert code == 0, err
    assert "gold gain:" in out and "SFT answer" in out and "policy answer" in out and out.count("Q: ") == 3
    record = json.loads((run_dir / "evals.jsonl").read_text().splitlines()[-1])
    assert record["prompts"] == 32 and len(record["samples"]) == 3 and record["policy"]["kl"] >= 0
    sampled = {"gold", "reward", "kl", "response_length", "ended_rate"}
    assert set(record["sft"]) == sampled | {f"{k}_greedy" for k in sampled - {"kl"}} and record["sft"]["kl"] == 0
    assert "greedy:" in out and "greedy (KL to the SFT model" in out
    code, _, err = cli(["eval", str(root / "sft"), "--samples", "3"])
    assert code == 2 and "is a run of algo=sft, which rlexp eval does not evaluate again" in err
    assert "rlhf_ppo, grpo" in err and "alphazero" in err and "dqn" in err  # the families that have one
    code, _, err = cli(["eval", str(run_dir), "--episodes", "3"])
    assert code == 2 and "--episodes is not for runs of algo=rlhf_ppo; their options: --samples, --prompts" in err
    code, out, err = cli(["report", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "report")])
    assert code == 0, err
    assert (tmp_path / "report" / "gold_vs_kl.png").stat().st_size > 10_000
    table = (tmp_path / "report" / "report.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| rlhf_ppo"))
    assert "| 2 |" in line and "model.from_run" not in line  # the seeds' runs form one group
    assert "gain greedy [95% t-interval]" in table and "nan" not in line  # greedy gold beside sampled gold


def test_name_or_path_takes_a_directory_a_stage_saved(stages, tmp_path):
    """A local model works the same whatever side its tokenizer pads on; its exports pad on the left."""
    import json
    import shutil

    root = stages[0]
    right = tmp_path / "right_padding"
    shutil.copytree(root / "pretrain" / "model", right)
    config = json.loads((right / "tokenizer_config.json").read_text())
    (right / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "right"}))
    finals = []
    for name, source in (("sft", root / "pretrain" / "model"), ("sft_right", right)):
        args = [*SFT, "algo.total_examples=128", "algo.eval_interval_examples=0", f"model.name_or_path={source}"]
        summary = run(compose_train(args), tmp_path / name)
        assert summary["examples"] == 128 and summary["lora"]
        final = [r for r in read_metrics(tmp_path / name / "metrics.jsonl") if "eval/gold" in r][-1]
        finals.append({k: v for k, v in final.items() if k.startswith("eval/")})
        exported = json.loads((tmp_path / name / "model" / "tokenizer_config.json").read_text())
        assert exported["padding_side"] == "left"
    assert finals[0] == finals[1] and "eval/gold_greedy" in finals[0]  # the same evaluations, number for number
    assert "the model of" not in (tmp_path / "sft" / "config.yaml").read_text()
    code, _, err = cli(["train", *SFT, f"model.name_or_path={tmp_path}", f"hydra.run.dir={tmp_path / 'bad'}"])
    assert code == 2 and f"model.name_or_path={tmp_path}: no causal LM and tokenizer there" in err


def test_the_language_model_algos_pick_the_language_task():
    for algo in ("pretrain", "sft", "reward_model", "rlhf_ppo", "grpo", "rloo", "dpo"):  # rlexp train algo=sft model.from_run=RUN
        assert compose_train([f"algo={algo}"]).env.id == "arithmetic", algo
    assert compose_train(["algo=dqn"]).env.id == compose_train([]).env.id == "CartPole-v1"


# --------------------------------------------------------------------------- DPO

DPO = ["algo=dpo", "env=arithmetic", "algo.total_pairs=1024", "algo.dataset_pairs=512", "algo.eval_pairs=128",
       "algo.log_interval_pairs=256", "algo.eval_interval_pairs=512", "algo.eval_prompts=64", "algo.samples_logged=4",
       *QUIET]


def _dpo(stages, tmp_path, *extra):
    run_dir = tmp_path / "dpo"
    return run(compose_train([*DPO, f"model.from_run={stages[0] / 'sft'}", *extra]), run_dir), run_dir


def test_dpo_starts_at_log_2_and_its_reference_is_the_sft_model_number_for_number(stages, tmp_path):
    """At the first step the policy is the reference: every pair's loss is exactly log 2. The
    cached reference log-probabilities are the SFT model's, recomputed here from its export
    with plain transformers."""
    import math

    from transformers import AutoModelForCausalLM

    from rlexp.build import build_trainer

    root = stages[0]
    trainer = build_trainer(compose_train([*DPO, f"model.from_run={root / 'sft'}", "algo.batch_size=16"]))
    first = trainer.advance()
    assert first["loss/dpo"] == pytest.approx(math.log(2), abs=1e-6)
    distinct = {(p.prompt, p.chosen, p.rejected) for p in trainer.examples}  # the 512 pairs, at once (by their text)
    assert trainer._parts["rewards/margins"] == 0.0 and set(trainer.ref_cache) == distinct
    sft = AutoModelForCausalLM.from_pretrained(root / "sft" / "model").eval()
    picked = [trainer.examples[i] for i in trainer.order[:16]]
    for pair in picked[:4]:
        chosen_ref, rejected_ref = trainer.ref_cache[(pair.prompt, pair.chosen, pair.rejected)]
        for answer, cached in ((pair.chosen, chosen_ref), (pair.rejected, rejected_ref)):
            prompt = trainer.tokenizer(pair.prompt)["input_ids"]
            tail = trainer.tokenizer(answer, add_special_tokens=False)["input_ids"] + [trainer.tokenizer.eos_token_id]
            with torch.no_grad():
                logits = sft(torch.tensor([prompt + tail])).logits[0, len(prompt) - 1:-1]
            expected = float(torch.log_softmax(logits.float(), -1)[torch.arange(len(tail)), torch.tensor(tail)].sum())
            assert cached == pytest.approx(expected, abs=1e-4), (pair, answer)


@pytest.mark.parametrize("extra", [[], ["lora.enabled=false", "algo.lr=3e-4", "algo.loss=ipo", "reward.from_run={rm}"]],
                         ids=["lora_sigmoid", "full_ipo_with_reward_model"])
def test_dpo_learns_the_labels_and_reports_gold_and_kl_as_the_rl_stages_do(stages, tmp_path, extra):
    import json

    root = stages[0]
    summary, run_dir = _dpo(stages, tmp_path, *[e.format(rm=root / "rm") for e in extra])
    rows = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in rows if "rewards/accuracies" in r]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected",
                "train/loss", "perf/pairs_per_s"):
        assert key in train[-1], key
    assert train[-1]["rewards/margins"] > train[0]["rewards/margins"]
    evals = [r for r in rows if "eval/gold" in r]
    assert len(evals) == 2 and evals[-1]["eval/kl"] > 0 and evals[-1]["eval/rewards/accuracies"] > 0.6
    assert evals[-1]["eval/gold_gain"] == evals[-1]["eval/gold"] - evals[-1]["eval/sft_gold"]
    assert ("eval/reward" in evals[-1]) == bool(extra) and ("eval/sft_reward" in evals[-1]) == bool(extra)
    assert summary["pairs"] == 1024 and summary["final_pair_accuracy"] == evals[-1]["eval/rewards/accuracies"]
    assert summary["gold_gain"] == summary["final_gold"] - summary["final_sft_gold"]
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and {"prompt", "answer", "sft_answer", "gold", "kl"} <= set(samples[0])
    assert (run_dir / "model" / "config.json").exists() and (run_dir / "adapter").exists() == (not extra)
    code, out, err = cli(["eval", str(run_dir), "--samples", "2", "--prompts", "16"])
    assert code == 0 and "gold gain:" in out and out.count("Q: ") == 2 and "(pair 1024)" in out, err


def test_the_pipeline_ending_in_dpo_runs_no_reward_model(tmp_path):
    import json

    run_dir = tmp_path / "pipe"
    code, out, err = cli(["train", "experiment=rlhf_arithmetic", "algo=dpo", "algo.total_pairs=64",
                          "algo.dataset_pairs=64", "algo.eval_pairs=32", "algo.eval_prompts=16", "env.max_operand=9",
                          'pipeline.pretrain=["algo.total_examples=320","algo.eval_prompts=16"]',
                          'pipeline.sft=["algo.total_examples=128","algo.eval_prompts=16"]',
                          *QUIET, f"hydra.run.dir={run_dir}"])
    assert code == 0, err
    assert "pipeline: reward_model skipped: algo=dpo does not use what it would train" in out
    stages = json.loads((run_dir / "pipeline.json").read_text())["stages"]
    assert [s["algo"] for s in stages] == ["pretrain", "sft", "dpo"] and not (run_dir / "3_reward_model").exists()
    from rlexp.runs import load_run_config

    dpo = load_run_config(run_dir / "3_dpo")
    assert dpo.model.from_run == str(run_dir / "2_sft") and dpo.reward.from_run is None
