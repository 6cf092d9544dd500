"""Language-model stages end to end: pretrain, then SFT with LoRA from it; the exported model
and adapters; bad input as one line."""

from __future__ import annotations

import pytest
import torch

from rlexp.loggers.jsonl import read_metrics
from rlexp.train import run
from tests.conftest import cli, compose_train

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
    assert final["eval/gold"] == sft["eval_score_mean"] and 0 <= final["eval/correct_rate"] <= 1
    base = AutoModelForCausalLM.from_pretrained(root / "pretrain" / "model")
    adapted = PeftModel.from_pretrained(base, root / "sft" / "adapter").eval()
    merged = AutoModelForCausalLM.from_pretrained(root / "sft" / "model").eval()
    ids = torch.tensor([[1, 10, 11, 12, 13]])
    with torch.no_grad():
        assert (adapted(ids).logits - merged(ids).logits).abs().max() < 1e-5


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
