"""The shipped RLHF task: addition answered by a language model, judged by a "human" whose
utility the package knows and the learner does not.

A prompt is ``"Q: 7+12=A:"``; the model's answer is the text it writes after it, up to its
end-of-sequence token. The hidden utility (:meth:`ArithmeticTask.utility`) prefers the right
sum said alone: 1 for it, less for every character of padding after it, a fraction for a
near miss, 0 for no number. Everything a real RLHF pipeline gets from people comes from
here, with known noise:

- **demonstrations** for SFT, written by annotators who are right most of the time but
  sometimes pad their answer or miss by a little (:meth:`demonstrations`);
- **preference pairs**: two candidate answers to one prompt, the label drawn from a
  Bradley-Terry model of the utility, ``P(a over b) = sigmoid((u(a) - u(b)) / temperature)``,
  so labels are noisy as human ones are (:meth:`preference_pairs`); the best accuracy any
  reward model can have on them is ``mean(max(p, 1 - p))`` (:func:`best_accuracy`);
- a **pretraining corpus** of arithmetic in several phrasings (:meth:`corpus`), so a small
  "base LLM" can be trained offline before SFT.

Because the utility is known, every run can report the gold score beside the reward
model's, which real RLHF cannot (over-optimization: Gao et al. 2022).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

PROMPT_RE = re.compile(r"^Q: (\d+)\+(\d+)=A:$")
ANSWER_RE = re.compile(r"^\s*(-?\d+)")
FILLERS = (" ok", " i think", " is the sum", " done", " yes")  # what padding annotators add


@dataclass(frozen=True)
class Pair:
    """One comparison: the labeler preferred ``chosen``; ``p_chosen`` was the chance it would."""

    prompt: str
    chosen: str
    rejected: str
    p_chosen: float


@dataclass(frozen=True)
class ArithmeticTask:
    """Addition of two numbers in ``[0, max_operand]``; the labeler's settings."""

    has_gold: ClassVar[bool] = True  # its utility is known (the user's own texts have none)

    max_operand: int = 19  # operands drawn uniformly from [0, max_operand]
    padding_penalty: float = 0.1  # utility lost per character after the number
    near_miss_credit: float = 0.5  # utility of an answer off by one; halves with each further unit of error
    annotator_correct: float = 0.6  # demonstrations: right and concise
    annotator_padded: float = 0.2  # demonstrations: right, then padding; the rest miss by 1-3
    label_temperature: float = 0.1  # Bradley-Terry temperature of the preference labels (0: noiseless)

    @classmethod
    def from_config(cls, env) -> "ArithmeticTask":
        """The task an ``env=arithmetic`` config (:class:`~rlexp.config.TaskEnvConfig`) describes."""
        return cls(env.max_operand, env.padding_penalty, env.near_miss_credit, env.annotator_correct,
                   env.annotator_padded, env.label_temperature)

    def prompt(self, rng: np.random.Generator) -> str:
        a, b = rng.integers(0, self.max_operand + 1, size=2)
        return f"Q: {a}+{b}=A:"

    def prompts(self, count: int, rng: np.random.Generator) -> list[str]:
        return [self.prompt(rng) for _ in range(count)]

    @staticmethod
    def truth(prompt: str) -> int:
        match = PROMPT_RE.match(prompt)
        if match is None:
            raise ValueError(f"not a prompt of this task: {prompt!r}")
        return int(match.group(1)) + int(match.group(2))

    def utility(self, prompt: str, answer: str) -> float:
        """The hidden gold score of ``answer`` to ``prompt``, in [0, 1]."""
        match = ANSWER_RE.match(answer)
        if match is None:
            return 0.0
        error = abs(int(match.group(1)) - self.truth(prompt))
        base = 1.0 if error == 0 else self.near_miss_credit * 0.5 ** (error - 1)
        extra = len(answer) - match.end()
        return max(0.0, base - self.padding_penalty * extra)

    def annotator_answer(self, prompt: str, rng: np.random.Generator) -> str:
        """An answer as the task's annotators write one: mostly right, sometimes padded or off."""
        truth, u = self.truth(prompt), rng.random()
        if u < self.annotator_correct:
            return str(truth)
        if u < self.annotator_correct + self.annotator_padded:
            return f"{truth}{FILLERS[rng.integers(len(FILLERS))]}"
        miss = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        return str(truth + miss if truth + miss >= 0 else truth - miss)

    def demonstrations(self, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """``count`` (prompt, answer) pairs for supervised fine-tuning."""
        return [(p, self.annotator_answer(p, rng)) for p in self.prompts(count, rng)]

    def preference_probability(self, prompt: str, a: str, b: str) -> float:
        """``P(the labeler prefers a over b)`` under the Bradley-Terry model of the utility."""
        gap = self.utility(prompt, a) - self.utility(prompt, b)
        if self.label_temperature == 0:
            return 0.5 if gap == 0 else float(gap > 0)
        return 1.0 / (1.0 + math.exp(-gap / self.label_temperature))

    def preference_pairs(self, count: int, rng: np.random.Generator) -> list[Pair]:
        """``count`` labelled comparisons of two different annotator answers to one prompt."""
        pairs = []
        while len(pairs) < count:
            prompt = self.prompt(rng)
            a, b = self.annotator_answer(prompt, rng), self.annotator_answer(prompt, rng)
            if a == b:
                continue
            p = self.preference_probability(prompt, a, b)
            pairs.append(Pair(prompt, a, b, p) if rng.random() < p else Pair(prompt, b, a, 1.0 - p))
        return pairs

    def corpus(self, lines: int, rng: np.random.Generator) -> list[str]:
        """Pretraining text: sums (right ones) in several phrasings, and counting."""
        out = []
        for _ in range(lines):
            a, b = (int(x) for x in rng.integers(0, self.max_operand + 1, size=2))
            kind = rng.integers(4)
            if kind == 0:
                out.append(f"{a}+{b}={a + b}")
            elif kind == 1:
                out.append(f"{a} plus {b} is {a + b}")
            elif kind == 2:
                out.append(f"the sum of {a} and {b} is {a + b}")
            else:
                out.append(" ".join(str(a + k) for k in range(int(rng.integers(3, 8)))))
        return out


def best_accuracy(pairs: list[Pair]) -> float:
    """The highest expected accuracy any reward model can reach on these labels: ``mean(max(p, 1 - p))``."""
    return float(np.mean([max(p.p_chosen, 1.0 - p.p_chosen) for p in pairs]))
