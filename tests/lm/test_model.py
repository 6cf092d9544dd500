"""Language models for the RLHF family: the character tokenizer, a tiny Llama built from a
config, LoRA through peft (few trainable parameters, frozen base, merge, peft's own format)."""

import copy

import pytest
import torch

from rlexp.errors import ConfigError
from rlexp.lm.model import add_lora, linear_module_names, load_pretrained, parameter_counts, tiny_llama
from rlexp.lm.tokenizer import char_tokenizer

TEXTS = ["Q: 7+12=A:19", "Q: 3+4=A:7 ok", "the sum of 2 and 2 is 4"]


def tiny(seed=0):
    tok = char_tokenizer()
    torch.manual_seed(seed)
    return tok, tiny_llama(len(tok), pad_id=tok.pad_token_id, bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)


def test_one_token_per_character_left_padded_with_bos():
    tok = char_tokenizer()
    batch = tok([TEXTS[0], "1+1"], padding=True)
    ids = batch["input_ids"]
    assert len(ids[0]) == len(TEXTS[0]) + 1 and ids[0][0] == tok.bos_token_id
    assert ids[1][:-4] == [tok.pad_token_id] * (len(ids[1]) - 4) and batch["attention_mask"][1][0] == 0  # left pad
    assert tok.unk_token_id not in ids[0] + ids[1]
    assert tok.decode(ids[0], skip_special_tokens=True) == TEXTS[0]
    assert [tok.decode([i]) for i in tok("12")["input_ids"][1:]] == ["1", "2"]  # digits never merge


def _train(model, tok, steps=5):
    batch = tok(TEXTS, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return batch


def test_lora_trains_few_parameters_leaves_the_base_bit_identical_and_merges(tmp_path):
    from peft import PeftModel

    tok, model = tiny()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    lora = add_lora(model, rank=4, alpha=8, dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    trainable, total = parameter_counts(lora)
    assert 0 < trainable / total < 0.05
    batch = _train(lora, tok)
    frozen = {n.removeprefix("base_model.model.").replace(".base_layer", ""): p
              for n, p in lora.named_parameters() if "lora_" not in n}
    assert frozen.keys() <= base.keys() and all(torch.equal(p, base[n]) for n, p in frozen.items())
    assert any(p.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)  # the adapters learned
    lora.eval()
    with torch.no_grad():
        adapted = lora(**batch).logits
        with lora.disable_adapter():  # the RL stage's reference policy: no second copy
            reference = lora(**batch).logits
        merged = copy.deepcopy(lora).merge_and_unload()(**batch).logits
    assert not torch.allclose(adapted, reference)
    assert (merged - adapted).abs().max() < 1e-5
    lora.save_pretrained(tmp_path / "adapter")  # peft's format: adapter_config.json + adapter_model.safetensors
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    _, fresh = tiny()
    loaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, adapted)


def test_a_saved_model_loads_from_its_directory(tmp_path):
    tok, model = tiny()
    tok.save_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "m")
    again, tok2 = load_pretrained(str(tmp_path / "m"))
    batch = tok2(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(again(**batch).logits, model(**batch).logits)


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "lora.rank must be >= 1, got 0"),
    ({"target_modules": ["c_attn"]}, "lora.target_modules: c_attn not in the model; its linear layers: down_proj"),
])
def test_bad_lora_settings_are_one_line(kwargs, message):
    _, model = tiny()
    settings = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj"], **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        add_lora(model, **settings)
    assert "\n" not in str(err.value)
    assert "q_proj" in linear_module_names(model)


def test_a_hub_id_offline_or_an_empty_directory_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not a local directory and not in the local Hugging Face cache"):
        load_pretrained("someone/no-such-model-xyz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no causal LM and tokenizer there") as err:
        load_pretrained(str(tmp_path / "empty"))
    assert "\n" not in str(err.value)
