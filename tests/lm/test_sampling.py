"""The one generation routine (greedy and sampled), the reward model's scores and the
left-padded layout they share: a batch gives what one prompt at a time gives, whatever side
the tokenizer pads on; greedy answers equal transformers' own ``generate``; the routine's
log-probabilities equal one full forward pass (the PPO ratio relies on it)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlexp.lm.model import tiny_llama
from rlexp.lm.sampling import encode_prompts, generate, left_align, positions, sequence_scores, token_logprobs
from rlexp.lm.tokenizer import char_tokenizer

PROMPTS = ["Q: 7+12=A:", "Q: 3+4=A:", "Q: 19+19=A:", "sum:", "Q: 0+0=A: and then some"]  # 5 to 24 characters


def _model(seed: int = 0, head: str = "lm", dtype=torch.float64):
    """A tiny random Llama in float64, so that batched and single passes cannot differ in an
    argmax through rounding; a layout error changes the answers entirely. Its embeddings are
    scaled up (tied to the output layer) so that its next-token distributions are peaked and
    depend on the context, as a trained model's do, rather than near uniform."""
    tok = char_tokenizer()
    torch.manual_seed(seed)
    model = tiny_llama(len(tok), pad_id=tok.pad_token_id, bos_id=tok.bos_token_id, eos_id=tok.eos_token_id, head=head)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5.0)
    return tok, model.to(dtype).eval()


def _tokenizer(side: str):
    tok = char_tokenizer()
    tok.padding_side = side
    return tok


def _frequent_token(model, tok) -> int:
    """A token the random model writes early, used as the end token so answers end at different lengths."""
    ids, mask = encode_prompts(tok, PROMPTS)
    out = generate(model, ids, mask, max_tokens=3, eos_id=-1, pad_id=tok.pad_token_id, greedy=True)
    return int(out.ids[:, 1:].flatten().mode().values)


@given(rows=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 6), st.integers(0, 4)), min_size=1, max_size=5))
@settings(max_examples=50, deadline=None)
def test_left_align_moves_every_rows_tokens_to_the_end_in_order(rows):
    width = max(a + n + b for a, n, b in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (before, n, _) in enumerate(rows):
        ids[i, before:before + n] = torch.arange(1, n + 1)
        mask[i, before:before + n] = 1
    aligned, aligned_mask = left_align(ids, mask)
    for i, (_, n, _) in enumerate(rows):
        assert aligned[i, width - n:].tolist() == list(range(1, n + 1))
        assert aligned_mask[i].tolist() == [0] * (width - n) + [1] * n
    assert positions(aligned_mask)[:, -1].tolist() == [n - 1 for _, n, _ in rows]


@pytest.mark.parametrize("side", ["left", "right"])
def test_encode_prompts_pads_on_the_left_whatever_the_tokenizer_does(side):
    ids, mask = encode_prompts(_tokenizer(side), PROMPTS)
    assert mask[:, -1].all() and not mask[:, 0].all()  # every prompt ends in the last column
    tok = char_tokenizer()
    for row, m, prompt in zip(ids, mask, PROMPTS):
        assert tok.decode(row[m.bool()], skip_special_tokens=True) == prompt


@pytest.mark.parametrize("side", ["left", "right"])
def test_greedy_answers_in_a_batch_equal_one_prompt_at_a_time(side):
    tok, model = _model()
    eos = _frequent_token(model, tok)
    padded = _tokenizer(side)
    enc = padded(PROMPTS, return_tensors="pt", padding=True)  # as the tokenizer gives them, either side
    batch = generate(model, enc["input_ids"], enc["attention_mask"], max_tokens=8, eos_id=eos,
                     pad_id=tok.pad_token_id, greedy=True)
    lengths = batch.mask.sum(1).tolist()
    assert len(set(lengths)) > 1 and batch.ended.any() and not batch.ended.all()  # answers end at different lengths
    for k, prompt in enumerate(PROMPTS):
        one = padded([prompt], return_tensors="pt")
        single = generate(model, one["input_ids"], one["attention_mask"], max_tokens=8, eos_id=eos,
                          pad_id=tok.pad_token_id, greedy=True)
        n = lengths[k]
        assert single.ids[0, :n].tolist() == batch.ids[k, :n].tolist() and single.mask.sum() == n, (side, prompt)
        assert bool(single.ended[0]) == bool(batch.ended[k])
        assert torch.allclose(single.logprobs[0, :n], batch.logprobs[k, :n], atol=1e-9)
        assert (batch.ids[k, n:] == tok.pad_token_id).all() and (batch.logprobs[k, n:] == 0).all()


def test_greedy_answers_equal_transformers_generate():
    """The library path is the reference: transformers' greedy ``generate`` on the same
    left-padded prompts writes the same tokens up to each answer's end."""
    tok, model = _model(seed=1)
    eos = _frequent_token(model, tok)
    ids, mask = encode_prompts(tok, PROMPTS)
    ours = generate(model, ids, mask, max_tokens=8, eos_id=eos, pad_id=tok.pad_token_id, greedy=True)
    theirs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False, eos_token_id=eos,
                            pad_token_id=tok.pad_token_id)[:, ids.shape[1]:]
    for k, n in enumerate(ours.mask.sum(1).tolist()):
        assert theirs[k, :n].tolist() == ours.ids[k, :n].tolist()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_the_routines_log_probabilities_equal_one_full_forward_pass(temperature):
    """The cached, left-padded decoding gives each token the log-probability one forward pass
    over prompt + answer gives it: the RL stages' old log-probabilities come from that pass,
    so the PPO ratio starts at exactly what the sampler drew."""
    tok, model = _model(seed=2, dtype=torch.float32)
    ids, mask = encode_prompts(_tokenizer("right"), PROMPTS)
    out = generate(model, ids, mask, max_tokens=10, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id,
                   temperature=temperature, generator=torch.Generator().manual_seed(0))
    seq, seq_mask = out.sequences
    with torch.no_grad():
        logits = model(input_ids=seq, attention_mask=seq_mask, position_ids=positions(seq_mask)).logits
    full = token_logprobs(logits[:, ids.shape[1] - 1:-1] / temperature, out.ids) * out.mask
    assert torch.allclose(out.logprobs, full, atol=2e-5), (out.logprobs - full).abs().max()


def test_sampling_draws_the_same_answers_from_the_same_generator_whatever_the_padding_side():
    tok, model = _model(seed=3)
    draws = []
    for side in ("left", "right"):
        enc = _tokenizer(side)(PROMPTS * 4, return_tensors="pt", padding=True)
        out = generate(model, enc["input_ids"], enc["attention_mask"], max_tokens=6, eos_id=tok.eos_token_id,
                       pad_id=tok.pad_token_id, generator=torch.Generator().manual_seed(7))
        draws.append(out.ids)
    assert torch.equal(draws[0], draws[1]) and len({tuple(r) for r in draws[0].tolist()}) > 5  # same draws, varied
    with pytest.raises(ValueError, match="sampling needs a torch.Generator"):
        generate(model, *encode_prompts(tok, PROMPTS), max_tokens=2, eos_id=2, pad_id=0)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pad_is_eos", [False, True], ids=["own_pad", "pad_is_eos"])
def test_reward_scores_of_a_batch_equal_one_sequence_at_a_time(side, pad_is_eos):
    """Prompts and answers of different lengths, padded on either side or laid out as the RL
    stages lay them out (prompt left-padded, answer right-padded: padding in the middle)."""
    tok, model = _model(seed=4, head="score")
    if pad_is_eos:  # a user's tokenizer with no pad token of its own, padded with its end token
        model.config.pad_token_id = tok.eos_token_id
    answers = ["19", "7 ok", "38", "", "1"]
    texts = [p + a for p, a in zip(PROMPTS, answers)]
    enc = _tokenizer(side)(texts, return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    eos = torch.full((len(texts), 1), tok.eos_token_id)
    ids, mask = torch.cat([ids, eos], 1), torch.cat([mask, torch.ones_like(eos)], 1)  # every answer ends
    if pad_is_eos:
        ids = ids.masked_fill(mask == 0, tok.eos_token_id)
    with torch.no_grad():
        batch = sequence_scores(model, ids, mask)
        singles = torch.cat([sequence_scores(model, ids[k:k + 1, mask[k].bool()],
                                             torch.ones(1, int(mask[k].sum()), dtype=torch.long))
                             for k in range(len(texts))])
        p_ids, p_mask = encode_prompts(tok, PROMPTS)  # the RL layout: [pad prompt] + [answer eos pad]
        a = _tokenizer("right")([a for a in answers], return_tensors="pt", padding=True, add_special_tokens=False)
        a_ids = torch.cat([a["input_ids"], torch.full((len(texts), 1), tok.pad_token_id)], 1)
        a_mask = torch.cat([a["attention_mask"], torch.zeros(len(texts), 1, dtype=torch.long)], 1)
        a_ids[torch.arange(len(texts)), a["attention_mask"].sum(1)] = tok.eos_token_id
        a_mask[torch.arange(len(texts)), a["attention_mask"].sum(1)] = 1
        middle = sequence_scores(model, torch.cat([p_ids, a_ids], 1), torch.cat([p_mask, a_mask], 1))
    assert torch.allclose(batch, singles, atol=1e-9) and torch.allclose(middle, singles, atol=1e-9)
    assert batch.std() > 0  # the scores differ between sequences: not a constant that would pass anyway
