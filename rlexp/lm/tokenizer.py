"""A character-level tokenizer, built with Hugging Face ``tokenizers`` and saved in the
``transformers`` format (``AutoTokenizer.from_pretrained(dir)`` loads it).

Character level, not a trained BPE: the shipped task is arithmetic, and BPE merges digits
into chunks that differ between numbers (``"12"`` one token, ``"123"`` two), which is known
to make arithmetic harder for small models; every digit its own token keeps the answers'
structure visible. The alphabet is the task's, so there is nothing to train and the
tokenizer is the same on every machine. A model from ``model.name_or_path`` brings its own.
"""

from __future__ import annotations

import string
from typing import Any

from rlexp.errors import ConfigError

ALPHABET = string.digits + string.ascii_letters + " +-*/=:?.,'!()"  # what the shipped task writes, and more
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def char_tokenizer(alphabet: str = ALPHABET):
    """A ``PreTrainedTokenizerFast``: one token per character of ``alphabet``, ``<bos>`` before
    every text, ``<pad>`` on the left (for batched generation, kept by ``save_pretrained``) and
    ``<eos>`` to end answers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, EOS, UNK]
    vocab = {token: i for i, token in enumerate([*specials, *dict.fromkeys(alphabet)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   padding_side="left")
    return fast


def pad_left(tokenizer: Any) -> Any:
    """``tokenizer`` set to pad on the left, in a way ``save_pretrained`` keeps, with a pad token
    (its end-of-sequence token when it has none, as TRL does); returned for chaining.

    A decoder-only model continues a batch of prompts correctly only when they are padded on
    the left. ``transformers`` writes ``padding_side`` into ``tokenizer_config.json`` only when
    it was a constructor argument (it saves the constructor's keyword arguments), so setting
    the attribute alone is lost on export and every later loader pads on the right.

    Raises:
        ConfigError: the tokenizer has neither a pad token nor an end-of-sequence token.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError("the model's tokenizer has no pad token and no end-of-sequence token; rlexp needs an "
                              "end-of-sequence token to end answers: add one (tokenizer.add_special_tokens) and save it")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    tokenizer.init_kwargs["padding_side"] = "left"
    return tokenizer
