"""The user's own texts (``env=text_data``), read with Hugging Face ``datasets`` from local
files in TRL's dataset formats, turned into what the language-model stages learn from:

- ``text``: a text column (pretrain), or ``messages`` (a whole conversation);
- ``demonstrations``: ``prompt`` + ``completion`` (SFT), or ``messages`` (the last turn,
  the assistant's, is the completion);
- ``pairs``: ``prompt`` + ``chosen`` + ``rejected`` (reward model, DPO); conversational pairs
  may leave the prompt out (the messages the two conversations share are the prompt);
- ``prompts``: ``prompt`` (the RL stages).

Each column is plain text or conversational (a list of ``{"role", "content"}`` messages);
conversations are rendered with the model's chat template (``apply_chat_template``), the
prompt with the generation prompt added, so the completion is exactly what the model must
write after it. A file is json/jsonl, parquet or csv, or a directory ``save_to_disk`` wrote.

Every problem with a file is one line naming it, the columns found and the ones expected.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlexp.errors import ConfigError
from rlexp.lm.task import Pair

KINDS = ("text", "demonstrations", "pairs", "prompts")
SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
NAN = float("nan")


def load_table(path: str, key: str) -> list[dict[str, Any]]:
    """The rows of a local file or saved dataset directory (``key``: the setting that named it).

    Raises:
        ConfigError: no such file, a format not read, unreadable, or no rows.
    """
    import datasets

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{key}={path}: no such file or directory")
    datasets.disable_progress_bars()
    try:
        if p.is_dir():
            data = datasets.load_from_disk(str(p))
            if isinstance(data, datasets.DatasetDict):
                if "train" not in data:
                    raise ConfigError(f"{key}={path}: a dataset dictionary without a 'train' split "
                                      f"(splits: {', '.join(data)})")
                data = data["train"]
        else:
            kind = SUFFIXES.get(p.suffix.lower())
            if kind is None:
                raise ConfigError(f"{key}={path}: a {p.suffix or 'suffix-less'} file; give a .json, .jsonl, .parquet "
                                  "or .csv file, or a directory datasets' save_to_disk wrote")
            data = datasets.load_dataset(kind, data_files=str(p), split="train")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; the user needs the file and the reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{key}={path}: not readable as a dataset ({reason})") from exc
    if len(data) == 0:
        raise ConfigError(f"{key}={path}: no rows")
    return data.to_list()


@dataclass
class Columns:
    """Which column holds what (``env.*_column``)."""

    text: str = "text"
    prompt: str = "prompt"
    completion: str = "completion"
    messages: str = "messages"
    chosen: str = "chosen"
    rejected: str = "rejected"


def _conversational(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


class UserTexts:
    """One file's rows (train or held out) as a stage's items: texts, (prompt, completion)
    pairs, preference :class:`Pair` s or prompts. No gold utility is known (``utility`` is NaN)."""

    has_gold = False

    def __init__(self, env: Any, tokenizer: Any):
        self.env, self.tokenizer = env, tokenizer
        self.columns = Columns(text=env.text_column, prompt=env.prompt_column, completion=env.completion_column,
                               messages=env.messages_column, chosen=env.chosen_column, rejected=env.rejected_column)

    # ------------------------------------------------------------------ splits

    def split(self, kind: str, heldout_count: int) -> tuple[list, list]:
        """(training items, held-out items) of ``kind``: the held-out ones from ``env.eval_file``,
        or the last ``env.eval_fraction`` of ``env.train_file``; at most ``heldout_count``."""
        train = self.items(kind, load_table(self.env.train_file, "env.train_file"), "env.train_file")
        if self.env.eval_file:
            heldout = self.items(kind, load_table(self.env.eval_file, "env.eval_file"), "env.eval_file")
        else:
            cut = int(round(len(train) * self.env.eval_fraction))
            if cut < 1 or cut >= len(train):
                raise ConfigError(f"env.train_file={self.env.train_file}: {len(train)} rows leave no held-out rows at "
                                  f"env.eval_fraction={self.env.eval_fraction}; give env.eval_file or more rows")
            train, heldout = train[:-cut], train[-cut:]
        return train, heldout[:heldout_count]

    def items(self, kind: str, rows: list[dict[str, Any]], key: str) -> list:
        where = f"{key}={getattr(self.env, key.split('.')[-1])}"
        found = list(rows[0])
        c = self.columns
        if kind == "text":
            if c.text in found:
                return [("", self._plain(r[c.text], where, c.text)) for r in rows]
            if c.messages in found:
                return [("", self._render(r[c.messages], where)) for r in rows]
            self._missing(where, found, f"{c.text} (or {c.messages})", "env.text_column")
        if kind == "demonstrations":
            if c.prompt in found and c.completion in found:
                return [self._prompt_and_answer(r[c.prompt], r[c.completion], where) for r in rows]
            if c.messages in found:
                return [self._split_conversation(r[c.messages], where) for r in rows]
            self._missing(where, found, f"{c.prompt} + {c.completion} (or {c.messages})", "env.prompt_column")
        if kind == "pairs":
            if c.chosen not in found or c.rejected not in found:
                self._missing(where, found, f"{c.prompt} + {c.chosen} + {c.rejected}", "env.chosen_column")
            return [self._pair(r, c.prompt in found, where) for r in rows]
        if kind == "prompts":
            if c.prompt not in found:
                self._missing(where, found, c.prompt, "env.prompt_column")
            return [self._prompt(r[c.prompt], where) for r in rows]
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")

    @staticmethod
    def _missing(where: str, found: list[str], expected: str, setting: str) -> None:
        raise ConfigError(f"{where}: columns {', '.join(found)}; expected {expected} (name other columns with "
                          f"{setting} and the like)")

    # ------------------------------------------------------------------ rendering

    def _plain(self, value: Any, where: str, column: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: column {column} holds {type(value).__name__}, not text")
        return value

    def _template(self, messages: list[dict], where: str, generation_prompt: bool) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"{where}: conversational rows need the model's chat template, and its tokenizer has "
                              "none; give plain-text columns or a model with a chat template")
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        except Exception as exc:  # noqa: BLE001 - a template raises what its author wrote (jinja's errors)
            raise ConfigError(f"{where}: the chat template refused a conversation with roles "
                              f"{', '.join(m['role'] for m in messages)} ({str(exc).splitlines()[0]})") from exc
        return self._without_leading_bos(text)

    def _without_leading_bos(self, text: str) -> str:
        """The rendered text without the ``<bos>`` a template writes itself (Llama's and Gemma's
        do) when the tokenizer adds one to every text it encodes: the stages encode texts with
        the tokenizer's special tokens, so the model would otherwise read two."""
        bos = self.tokenizer.bos_token
        if bos and text.startswith(bos) and self._tokenizer_adds_bos:
            return text[len(bos):]
        return text

    @functools.cached_property
    def _tokenizer_adds_bos(self) -> bool:
        ids = self.tokenizer("a")["input_ids"]
        return bool(ids) and ids[0] == self.tokenizer.bos_token_id

    def _render(self, messages: Any, where: str) -> str:
        if not _conversational(messages):
            raise ConfigError(f"{where}: a conversation must be a list of {{role, content}} messages")
        return self._template(messages, where, False)

    def _prompt(self, value: Any, where: str) -> str:
        if isinstance(value, str):
            return value
        if not _conversational(value):
            raise ConfigError(f"{where}: a prompt must be text or a list of {{role, content}} messages")
        return self._template(value, where, True)

    def _prompt_and_answer(self, prompt: Any, answer: Any, where: str) -> tuple[str, str]:
        """(prompt text, completion text): the completion is what the full conversation adds
        after the prompt rendered with its generation prompt."""
        if isinstance(prompt, str) and isinstance(answer, str):
            return prompt, answer
        if not (_conversational(prompt) and _conversational(answer)):
            raise ConfigError(f"{where}: prompt and completion must both be text or both lists of {{role, content}} "
                              "messages")
        if not answer or any(m["role"] != "assistant" for m in answer):
            raise ConfigError(f"{where}: a conversational completion must be assistant messages, got roles "
                              f"{', '.join(m['role'] for m in answer) or 'none'}")
        head = self._template(prompt, where, True)
        full = self._template(prompt + answer, where, False)
        if not full.startswith(head):
            raise ConfigError(f"{where}: the chat template renders the prompt differently inside the conversation; "
                              "its completions cannot be cut from it")
        return head, full[len(head):]

    def _split_conversation(self, messages: Any, where: str) -> tuple[str, str]:
        if not _conversational(messages) or len(messages) < 2 or messages[-1]["role"] != "assistant":
            roles = ", ".join(m.get("role", "?") for m in messages) if isinstance(messages, list) else "none"
            raise ConfigError(f"{where}: a conversation to learn from must end with an assistant message after at "
                              f"least one other; got roles {roles}")
        return self._prompt_and_answer(messages[:-1], messages[-1:], where)

    def _pair(self, row: dict[str, Any], explicit: bool, where: str) -> Pair:
        c = self.columns
        chosen, rejected = row[c.chosen], row[c.rejected]
        if explicit:
            prompt = row[c.prompt]
        elif _conversational(chosen) and _conversational(rejected):  # implicit prompt: the shared messages
            shared = 0
            while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
                shared += 1
            if shared == 0:
                raise ConfigError(f"{where}: conversational pairs without a {c.prompt} column must share their "
                                  "first messages (the prompt)")
            prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        else:
            raise ConfigError(f"{where}: plain-text pairs need a {c.prompt} column (columns: {', '.join(row)})")
        head, good = self._prompt_and_answer(prompt, chosen, where)
        _, bad = self._prompt_and_answer(prompt, rejected, where)
        return Pair(head, good, bad, NAN)

    # ------------------------------------------------------------------ what the RL stages draw

    @staticmethod
    def draw(prompts: list[str], count: int, rng: np.random.Generator) -> list[str]:
        """``count`` prompts drawn from ``prompts`` without replacement (with, when fewer)."""
        picks = rng.choice(len(prompts), size=count, replace=count > len(prompts))
        return [prompts[i] for i in picks]

    @staticmethod
    def utility(prompt: str, answer: str) -> float:
        return NAN
