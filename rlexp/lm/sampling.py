"""Generating answers with a causal LM, scoring them with a reward model, and reading them
token by token: the one path every language-model evaluation and the RL stages' sampling take.

A loop of our own rather than ``model.generate``: the sampled tokens come from the caller's
``torch.Generator`` (a resumed run draws the same answers), the answers come back laid out as
the RL math expects them (left-aligned, padding after the end-of-sequence token, with each
token's log-probability), and a step is one forward through the KV cache and nothing else (no
logits processors or stopping-criteria objects); it stops as soon as every answer has ended.
Greedy decoding is the same loop with ``argmax``; ``tests/lm/test_sampling.py`` holds it equal
to ``transformers``' own ``generate`` and its log-probabilities equal to one full forward pass.

Layout: prompts are left-padded (``[pad pad <bos> Q : 1 + 2 = A :]``) whatever side the
tokenizer pads on (:func:`left_align` moves them), and the answers follow right-padded
(``[3 <eos> pad]``), so ``torch.cat([prompt, answer], 1)`` with the masks concatenated is a
batch every model here reads with ``positions(mask)``. A decoder-only model must see a
prompt's last real token in the last column: under right padding it would continue after
padding tokens, and a batch's answers would differ from one prompt at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids under left padding: 0 at each sequence's first real token."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def left_align(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids`` and ``mask`` with every row's real tokens moved to the right end, in their order
    (padding on the left, on the right or in between all end up on the left)."""
    order = torch.sort(mask.long(), dim=1, stable=True).indices  # the padding (0) first, then the tokens in order
    return ids.gather(1, order), mask.gather(1, order)


def encode_prompts(tokenizer: Any, prompts: Sequence[str], device: torch.device | str = "cpu",
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of ``prompts``, left-padded whatever the tokenizer's ``padding_side``."""
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    ids, mask = left_align(enc["input_ids"], enc["attention_mask"])
    return ids.to(device), mask.to(device)


@dataclass
class Answers:
    """Generated answers and the prompts they answer, laid out as the module docstring says."""

    prompt_ids: torch.Tensor  # (B, P) left-padded prompts
    prompt_mask: torch.Tensor  # (B, P) 1 on the prompts' tokens
    ids: torch.Tensor  # (B, T) answer tokens, pad after each answer's end
    mask: torch.Tensor  # (B, T) 1 on each answer's tokens up to and including its end-of-sequence token
    ended: torch.Tensor  # (B,) whether that end-of-sequence token came within max_tokens
    logprobs: torch.Tensor  # (B, T) log p of each answer token under the sampling distribution; 0 on padding

    @property
    def sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask) of prompt and answer together: what a scoring or training pass reads."""
        return torch.cat([self.prompt_ids, self.ids], 1), torch.cat([self.prompt_mask, self.mask], 1)

    def texts(self, tokenizer: Any) -> list[str]:
        """Each answer decoded, special tokens left out."""
        return [tokenizer.decode(row[:n], skip_special_tokens=True)
                for row, n in zip(self.ids.tolist(), self.mask.sum(1).tolist())]


@torch.no_grad()
def generate(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, *, max_tokens: int, eos_id: int,
             pad_id: int, greedy: bool = False, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> Answers:
    """One answer per prompt row: sampled at ``temperature`` with ``generator``, or greedy
    (the most likely token at each step; ``logprobs`` are still under ``temperature``).

    The prompts may be padded on either side. Answers end at ``eos_id`` or after ``max_tokens``.
    """
    if not greedy and generator is None:
        raise ValueError("sampling needs a torch.Generator (greedy=True decodes without one)")
    ids, mask = left_align(prompt_ids, prompt_mask)
    prompt_mask = mask = mask.long()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=True, logits_to_keep=1)
    next_position = positions(mask)[:, -1:] + 1
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    tokens, alive, logprobs = [], [], []
    for t in range(max_tokens):
        logits = out.logits[:, -1].float() / temperature
        if greedy:
            token = logits.argmax(-1)
        else:
            token = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
        logprob = torch.gather(F.log_softmax(logits, dim=-1), 1, token[:, None]).squeeze(1)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens.append(token)
        alive.append(~done)
        logprobs.append(logprob * alive[-1])
        done = done | (token == eos_id)
        if t == max_tokens - 1 or bool(done.all()):
            break
        mask = torch.cat([mask, alive[-1].long()[:, None]], dim=1)  # the token just drawn is real if its answer had not ended
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_position,
                    cache=out.cache, use_cache=True, logits_to_keep=1)
        next_position = next_position + 1
    return Answers(ids, prompt_mask, torch.stack(tokens, dim=1), torch.stack(alive, dim=1).long(), done,
                   torch.stack(logprobs, dim=1))


def sequence_scores(model: Any, ids: torch.Tensor, mask: torch.Tensor, run: Any = None) -> torch.Tensor:
    """A reward model's scalar for each sequence, read at its last real token, ``(B,)``;
    ``run``: the module to run instead of ``model`` (its data-parallel wrapper), default ``model``.

    Padding may sit anywhere (left of the prompt, between prompt and answer, after the
    answer): the rows are left-aligned first, so the last real token is the last column.
    The model gets embeddings rather than ids because ``transformers``' sequence-classification
    heads then read the last column; given ids they look for the last token that is not the
    pad token, which is the wrong one when a tokenizer's pad token is also its end token.
    """
    ids, mask = left_align(ids, mask)
    embeds = model.get_input_embeddings()(ids)
    out = (run or model)(inputs_embeds=embeds, attention_mask=mask, position_ids=positions(mask))
    return out.logits[:, 0].float()


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log p(token)`` at each position, from logits ``(B, T, V)`` and tokens ``(B, T)``."""
    return torch.gather(F.log_softmax(logits.float(), dim=-1), 2, tokens[..., None]).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """The entropy of each position's distribution, ``(B, T)``."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
