"""``metrics.jsonl``: one JSON object per log event; the local record that later tools read."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rlexp.loggers.base import Sink


class JsonlLogger(Sink):
    """Appends ``{"step": N, "time_s": T, <namespaced keys>}`` lines, flushed per event."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": int(step)}
        for key, value in metrics.items():
            value = float(value)
            row[key] = value if math.isfinite(value) else None  # JSON has no NaN/inf
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def files(self) -> dict[str, str]:
        return {self.path.name: "one JSON object per log event (train/, eval/, loss/, perf/)"}

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict]:
    """Rows of a ``metrics.jsonl``, skipping a half-written last line of a crashed run."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
