"""Sampling answers from a causal LM, and scoring them token by token.

A small loop of our own rather than ``model.generate``: the RL stage needs the sampled
tokens drawn from its own ``torch.Generator`` (so a resumed run draws the same answers),
the answers laid out as the RL math expects them (left-aligned, padding after the
end-of-sequence token) and nothing else per step (no logits processors or stopping
criteria objects): one forward per token with the KV cache, and it stops as soon as every
answer has ended.

Layout: the prompts are left-padded (``[pad pad <bos> Q : 1 + 2 = A :]``), the answers follow
right-padded (``[3 <eos> pad]``), so ``torch.cat([prompt, answer], 1)`` with the masks
concatenated is a batch every model here reads with ``positions(mask)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids under left padding: 0 at each sequence's first real token."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def sample_answers(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, *, max_tokens: int,
                   temperature: float, eos_id: int, pad_id: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample one answer per prompt row.

    Returns:
        (answer ids ``(B, T)``, answer mask ``(B, T)``: 1 on each answer's tokens up to and
        including its end-of-sequence token, ended ``(B,)``: whether that token came
        within ``max_tokens``).
    """
    rows = prompt_ids.shape[0]
    mask = prompt_mask.long()
    out = model(input_ids=prompt_ids, attention_mask=mask, position_ids=positions(mask), use_cache=True,
                logits_to_keep=1)
    next_position = positions(mask)[:, -1:] + 1
    done = torch.zeros(rows, dtype=torch.bool, device=prompt_ids.device)
    tokens, alive = [], []
    for t in range(max_tokens):
        probs = F.softmax(out.logits[:, -1].float() / temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens.append(token)
        alive.append(~done)
        done = done | (token == eos_id)
        if t == max_tokens - 1 or bool(done.all()):
            break
        mask = torch.cat([mask, alive[-1].long()[:, None]], dim=1)  # the token just drawn is real if its answer had not ended
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_position,
                    cache=out.cache, use_cache=True, logits_to_keep=1)
        next_position = next_position + 1
    answer = torch.stack(tokens, dim=1)
    answer_mask = torch.stack(alive, dim=1).long()
    return answer, answer_mask, done


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log p(token)`` at each position, from logits ``(B, T, V)`` and tokens ``(B, T)``."""
    return torch.gather(F.log_softmax(logits.float(), dim=-1), 2, tokens[..., None]).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """The entropy of each position's distribution, ``(B, T)``."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
