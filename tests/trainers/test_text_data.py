"""The user's own model and data: a tiny GPT-2 (another architecture than the shipped Llama)
with a chat template, saved by the test, and small data files in TRL's formats written by the
test; every stage reads them; bad files are one line naming the file, the columns found and
the ones expected. Nothing is downloaded."""

from __future__ import annotations

import json

import pytest

from rlexp.loggers.jsonl import read_metrics
from tests.conftest import cli

pytestmark = pytest.mark.slow

QUIET = ["logger=none", "logger.progress=none", "device.torch_threads=1"]
TEMPLATE = ("{% for m in messages %}<{{ m['role'][0] }}>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<a>{% endif %}")
WORDS = ["red", "blue", "green", "sky", "grass", "sea", "fire", "leaf"]
COLOUR = {"sky": "blue", "sea": "blue", "grass": "green", "leaf": "green", "fire": "red"}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A saved tiny GPT-2 and its char tokenizer (with a chat template), and data files."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from rlexp.lm.tokenizer import char_tokenizer

    root = tmp_path_factory.mktemp("local")
    tok = char_tokenizer("abcdefghijklmnopqrstuvwxyz ?:<>\n")
    tok.chat_template = TEMPLATE
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(root / "gpt2")
    tok.save_pretrained(root / "gpt2")
    things = list(COLOUR)

    def lines(name, rows):
        path = root / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    demos = [{"prompt": f"what colour is {t}?", "completion": f" {COLOUR[t]}"} for t in things * 8]
    lines("demos.jsonl", demos)
    lines("chat.jsonl", [{"messages": [{"role": "user", "content": d["prompt"]},
                                       {"role": "assistant", "content": d["completion"].strip()}]} for d in demos])
    prefs = [{"prompt": f"what colour is {t}?", "chosen": f" {COLOUR[t]}", "rejected": f" {w}"}
             for t in things for w in ("red", "blue", "green") if w != COLOUR[t]] * 6
    lines("prefs.jsonl", prefs[:-10])
    lines("prefs_eval.jsonl", prefs[-10:])
    import pandas as pd

    pd.DataFrame({"prompt": [d["prompt"] for d in demos]}).to_parquet(root / "prompts.parquet")
    pd.DataFrame(prefs).to_csv(root / "prefs.csv", index=False)
    from datasets import Dataset

    Dataset.from_list(prefs[:-10]).save_to_disk(str(root / "prefs_saved"))  # a save_to_disk directory
    chat = [{"chosen": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"].strip()}],
             "rejected": [{"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["rejected"].strip()}]} for r in prefs]
    lines("chat_prefs.jsonl", chat)  # conversational pairs with the prompt left implicit
    lines("empty.jsonl", [])
    (root / "empty.jsonl").write_text("")
    (root / "notes.txt").write_text("not a dataset\n")
    lines("no_assistant.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    return root


def _train(args, run_dir):
    code, out, err = cli(["train", *args, *QUIET, f"hydra.run.dir={run_dir}"])
    assert code == 0, err
    return json.loads((run_dir / "summary.json").read_text())


def test_every_stage_runs_on_a_local_model_and_local_files(local, tmp_path):
    model = f"model.name_or_path={local / 'gpt2'}"
    sft = _train(["algo=sft", model, "env=text_data", f"env.train_file={local / 'demos.jsonl'}",
                  "algo.total_examples=640", "algo.batch_size=16", "algo.eval_interval_examples=320",
                  "lora.target_modules=[auto]"], tmp_path / "sft")
    assert sft["lora"] and sft["examples"] == 640
    losses = [r["eval/loss"] for r in read_metrics(tmp_path / "sft" / "metrics.jsonl") if "eval/loss" in r]
    assert losses[-1] < losses[0] and not any("eval/gold" in r for r in read_metrics(tmp_path / "sft" / "metrics.jsonl"))
    chat = _train(["algo=sft", model, "env=text_data", f"env.train_file={local / 'chat.jsonl'}",
                   "algo.total_examples=64", "algo.batch_size=16"], tmp_path / "chat")
    assert chat["examples"] == 64
    sft_run = f"model.from_run={tmp_path / 'sft'}"
    rm = _train(["algo=reward_model", sft_run, "env=text_data", f"env.train_file={local / 'prefs.csv'}",
                 "env.eval_fraction=0.1", "algo.total_pairs=256", "algo.batch_size=16"], tmp_path / "rm")
    final = [r for r in read_metrics(tmp_path / "rm" / "metrics.jsonl") if "eval/rm_accuracy" in r][-1]
    assert rm["pairs"] == 256 and "eval/rm_best_accuracy" not in final  # no label noise is known for the user's pairs
    dpo = _train(["algo=dpo", sft_run, "env=text_data", f"env.train_file={local / 'prefs_saved'}",
                  f"env.eval_file={local / 'prefs_eval.jsonl'}", "algo.total_pairs=256", "algo.batch_size=16",
                  "algo.max_answer_tokens=6"], tmp_path / "dpo")
    rows = read_metrics(tmp_path / "dpo" / "metrics.jsonl")
    final = [r for r in rows if "eval/rewards/accuracies" in r][-1]
    assert dpo["score_name"] == "eval_pair_accuracy" and dpo["objective"] == final["eval/rewards/accuracies"]
    assert "eval/kl" in final and "eval/gold" not in final and "eval/reward" not in final
    chat_dpo = _train(["algo=dpo", sft_run, "env=text_data", f"env.train_file={local / 'chat_prefs.jsonl'}",
                       "algo.total_pairs=64", "algo.batch_size=16", "algo.max_answer_tokens=6"], tmp_path / "chat_dpo")
    assert chat_dpo["pairs"] == 64
    samples = [json.loads(x) for x in (tmp_path / "chat_dpo" / "samples.jsonl").read_text().splitlines()]
    assert samples[0]["prompt"].startswith("<u>what colour is") and samples[0]["prompt"].endswith("<a>")
    grpo = _train(["algo=grpo", sft_run, f"reward.from_run={tmp_path / 'rm'}", "env=text_data",
                   f"env.train_file={local / 'prompts.parquet'}", "algo.total_prompts=32", "algo.batch_prompts=8",
                   "algo.samples_per_prompt=4", "algo.minibatch_answers=16", "algo.eval_prompts=8",
                   "algo.max_answer_tokens=6"], tmp_path / "grpo")
    assert grpo["score_name"] == "eval_reward" and grpo["prompts"] == 32
    final = [r for r in read_metrics(tmp_path / "grpo" / "metrics.jsonl") if "eval/reward" in r][-1]
    assert "eval/gold" not in final and "eval/kl" in final
    # a reward model from a local sequence-classification checkpoint: the rm run's export
    grpo2 = _train(["algo=grpo", sft_run, f"reward.name_or_path={tmp_path / 'rm' / 'model'}", "env=text_data",
                    f"env.train_file={local / 'prompts.parquet'}", "algo.total_prompts=8", "algo.batch_prompts=8",
                    "algo.samples_per_prompt=4", "algo.minibatch_answers=16", "algo.eval_prompts=8",
                    "algo.max_answer_tokens=6"], tmp_path / "grpo2")
    assert grpo2["reward_run"] == str(tmp_path / "rm" / "model")


@pytest.mark.parametrize("args, message", [
    (["algo=dpo", "env.train_file={local}/demos.jsonl"],
     "env.train_file={local}/demos.jsonl: columns prompt, completion; expected prompt + chosen + rejected"),
    (["algo=sft", "env.train_file={local}/prefs.jsonl"],
     "env.train_file={local}/prefs.jsonl: columns prompt, chosen, rejected; expected prompt + completion (or messages)"),
    (["algo=sft", "env.train_file={local}/empty.jsonl"], "env.train_file={local}/empty.jsonl: "),
    (["algo=sft", "env.train_file={local}/no_assistant.jsonl"],
     "a conversation to learn from must end with an assistant message after at least one other; got roles user"),
    (["algo=sft", "env.train_file={local}/missing.jsonl"], "env.train_file={local}/missing.jsonl: no such file"),
    (["algo=sft", "env.train_file={local}/demos.jsonl", "env.eval_file={local}/notes.txt"],
     "env.eval_file={local}/notes.txt: a .txt file; give a .json, .jsonl, .parquet or .csv file"),
    (["algo=sft", "env.train_file={local}/demos.jsonl", "lora.target_modules=[q_proj]"],
     "lora.target_modules: q_proj not in the model; its linear layers: c_attn, c_fc, c_proj, lm_head"),
    (["algo=sft", "env.train_file={local}/demos.jsonl", "env.eval_fraction=0.001"], "leave no held-out rows"),
])
def test_bad_files_and_modules_are_one_line(local, tmp_path, args, message):
    run_dir = tmp_path / "run"
    args = [a.format(local=local) for a in args]
    code, _, err = cli(["train", *args, f"model.name_or_path={local / 'gpt2'}", "env=text_data", *QUIET,
                        f"hydra.run.dir={run_dir}"])
    assert code == 2 and message.format(local=local) in err and len(err.strip().splitlines()) == 1, err
    assert not run_dir.exists()


def test_conversations_need_a_chat_template(local, tmp_path):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(local / "gpt2", plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in plain.glob("chat_template.*"):
        extra.unlink()
    code, _, err = cli(["train", "algo=sft", f"model.name_or_path={plain}", "env=text_data",
                        f"env.train_file={local / 'chat.jsonl'}", *QUIET, f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == 2 and "conversational rows need the model's chat template, and its tokenizer has none" in err, err


@pytest.mark.parametrize("adds_bos", [True, False])
def test_a_template_that_writes_bos_gives_the_model_one(tmp_path, adds_bos):
    """Llama-style templates start with ``{{ bos_token }}``; a tokenizer that adds ``<bos>`` to
    every text would make it two, so the rendered text drops the template's (and keeps it when
    the tokenizer adds none, as GPT-2's)."""
    from types import SimpleNamespace

    from rlexp.lm.data import UserTexts
    from rlexp.lm.tokenizer import char_tokenizer

    tok = char_tokenizer("abcdefghijklmnopqrstuvwxyz ?:<>\n")
    tok.chat_template = "{{ bos_token }}" + TEMPLATE
    if not adds_bos:
        tok._tokenizer.post_processor = None  # encode as written, no special tokens added
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "sky?"},
                                             {"role": "assistant", "content": "blue"}]}) + "\n")
    env = SimpleNamespace(text_column="text", prompt_column="prompt", completion_column="completion",
                          messages_column="messages", chosen_column="chosen", rejected_column="rejected",
                          train_file=str(path))
    texts = UserTexts(env, tok)
    prompt, answer = texts.items("demonstrations", [json.loads(path.read_text())], "env.train_file")[0]
    assert answer == "blue\n"
    ids = tok(prompt)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
