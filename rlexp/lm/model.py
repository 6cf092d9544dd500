"""Causal language models from ``transformers``, built small from a config (random init, no
download) or loaded from a local directory, and LoRA adapters through ``peft``.

The reference policy of the RL stage is the policy with its adapters disabled
(``peft``'s ``disable_adapter()``), not a second copy: LoRA keeps the base weights frozen,
so the base *is* the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rlexp.errors import ConfigError
from rlexp.lm.tokenizer import pad_left


def quiet_transformers() -> None:
    """No progress bars or load reports from ``transformers`` on rlexp's console (errors still show)."""
    import warnings

    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")  # its own deprecations


def tiny_llama(vocab_size: int, *, hidden_size: int = 64, layers: int = 2, heads: int = 4,
               intermediate_size: int = 128, max_positions: int = 64, pad_id: int = 0, bos_id: int = 1,
               eos_id: int = 2, head: str = "lm") -> Any:
    """A randomly initialised Llama of the given size (the torch global RNG draws its weights:
    seed it first): ``LlamaForCausalLM``, or with ``head="score"`` ``LlamaForSequenceClassification``
    with one output (a reward model: a scalar at the last real token). Llama's blocks: RMSNorm,
    rotary positions, SwiGLU."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=intermediate_size,
                         max_position_embeddings=max_positions, pad_token_id=pad_id, bos_token_id=bos_id,
                         eos_token_id=eos_id, tie_word_embeddings=head == "lm", num_labels=1)
    return LlamaForCausalLM(config) if head == "lm" else LlamaForSequenceClassification(config)


def load_pretrained(name_or_path: str, head: str = "lm", key: str = "model.name_or_path") -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory or the local Hugging Face cache; never the network.
    ``head="score"`` loads it as a reward model (a new scalar head on the last token, unless
    the directory holds one already).

    Raises:
        ConfigError: one line: the directory holds no model, or a hub id is not cached (offline).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    local = Path(name_or_path).expanduser()
    where = str(local) if local.exists() else name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
        if head == "lm":
            model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(where, local_files_only=True, num_labels=1)
    except (OSError, ValueError) as err:
        if local.exists():
            raise ConfigError(f"{key}={name_or_path}: no {'causal LM' if head == 'lm' else 'model'} and tokenizer there "
                              f"({str(err).splitlines()[0][:160]})") from None
        raise ConfigError(f"{key}={name_or_path} is not a local directory and not in the local "
                          "Hugging Face cache; rlexp runs offline: download it once (huggingface-cli download "
                          f"{name_or_path}) or pass a directory") from None
    pad_left(tokenizer)
    name_special_tokens(model, tokenizer)
    return model, tokenizer


def name_special_tokens(model: Any, tokenizer: Any) -> None:
    """Write the tokenizer's pad token (and its end token, where the model names none) into the
    model's config and generation config, so that what a stage exports batches correctly in
    anyone's hands: ``model.generate`` pads and stops without being told, and a
    sequence-classification head finds each sequence's last token."""
    model.config.pad_token_id = tokenizer.pad_token_id
    generation = getattr(model, "generation_config", None) if model.can_generate() else None
    if generation is not None:
        generation.pad_token_id = tokenizer.pad_token_id
        if generation.eos_token_id is None:
            generation.eos_token_id = tokenizer.eos_token_id


def linear_module_names(model: Any) -> list[str]:
    """The last name component of every linear layer in ``model`` (what LoRA can target), sorted:
    ``nn.Linear``, and transformers' ``Conv1D`` (GPT-2's linear layers)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, (torch.nn.Linear, Conv1D))})


def add_lora(model: Any, *, rank: int, alpha: float, dropout: float, target_modules: Sequence[str],
             task_type: str = "CAUSAL_LM") -> Any:
    """``model`` wrapped by ``peft`` with LoRA adapters (W' = W + (alpha / rank) B A; only A and B train).

    Raises:
        ConfigError: ``rank`` < 1, or a target module the model does not have (the valid names listed).

    ``target_modules=["auto"]``: the layers peft adapts by default for the model's architecture
    (Llama: q_proj and v_proj, Hu et al.'s W_q and W_v; GPT-2: c_attn).
    """
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise ConfigError(f"lora.rank must be >= 1, got {rank}")
    names = linear_module_names(model)
    if list(target_modules) == ["auto"]:  # the layers peft adapts by default for this architecture
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

        model_type = model.config.model_type
        if model_type not in KNOWN:
            raise ConfigError(f"lora.target_modules=[auto]: peft knows no default layers for model type {model_type}; "
                              f"name them, e.g. lora.target_modules=[{names[0]}]; its linear layers: {', '.join(names)}")
        target_modules = KNOWN[model_type]
    missing = [t for t in target_modules if t not in names]
    if missing or not target_modules:
        raise ConfigError(f"lora.target_modules: {', '.join(missing) or '(none given)'} not in the model; "
                          f"its linear layers: {', '.join(names)}")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        task_type=task_type)  # SEQ_CLS: the new score head trains in full beside the adapters
    return get_peft_model(model, config)


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
