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

ALPHABET = string.digits + string.ascii_letters + " +-*/=:?.,'!()"  # what the shipped task writes, and more
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def char_tokenizer(alphabet: str = ALPHABET):
    """A ``PreTrainedTokenizerFast``: one token per character of ``alphabet``, ``<bos>`` before
    every text, ``<pad>`` on the left (for batched generation) and ``<eos>`` to end answers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, EOS, UNK]
    vocab = {token: i for i, token in enumerate([*specials, *dict.fromkeys(alphabet)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK)
    fast.padding_side = "left"
    return fast
