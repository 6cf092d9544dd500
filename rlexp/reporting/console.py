"""The console tables of ``rlexp report`` (rich): scores, published references, Atari
aggregates, the RLHF over-optimization table and a sweep's jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def print_report(result: dict, roots: list[Path], last_evals: int) -> None:
    """The report's tables on the console: groups, comparisons, references, Atari aggregates, sweep jobs."""
    from rich.console import Console
    from rich.table import Table

    from rlexp import sweeps
    from rlexp.reporting.report import published_aggregate_lines

    console = Console(width=200)
    final = "last evaluation" if last_evals == 1 else f"mean of the last {last_evals} evaluations"
    table = Table(title=f"final score ({final}), best IQM first; [95% bootstrap CI]", title_justify="left")
    for column in ("group", "runs", "IQM", "mean", "median"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in result["summaries"]:
        table.add_row(g.name, str(len(g.runs)), str(g.iqm), str(g.mean), str(g.median))
    console.print(table)
    if result["comparison"] is not None:
        console.print(f"probability of improvement P(A > B): {result['comparison']}")
    if result["references"]:
        rt = Table(title="published vs ours (ours: IQM of final scores)", title_justify="left")
        for column in ("group", "published", "ours", "human-normalized IQM", "comparable", "source / notes"):
            rt.add_column(column)
        for r in result["references"]:
            rt.add_row(r["group"], r["paper"], r["ours"], r["human_normalized_iqm"], "yes" if r["comparable"] else "no",
                       r["source"] + ("; " if r["notes"] else "") + r["notes"])
        console.print(rt)
    if result["aggregates"]:
        at = Table(title="aggregate over Atari games: human-normalized final scores [95% stratified bootstrap CI]",
                   title_justify="left")
        for column in ("method", "games", "runs", "IQM", "mean", "median"):
            at.add_column(column)
        for a in result["aggregates"]:
            at.add_row(a["method"], ", ".join(a["games"]), str(a["runs"]), str(a["iqm"]), str(a["mean"]), str(a["median"]))
        console.print(at)
        for line in published_aggregate_lines(result["aggregates"]):
            console.print(line)
    if result["overoptimization"]:
        console.print(_overoptimization_table(result["overoptimization"]))
    if result["aggregate_comparison"]:
        games, estimate = result["aggregate_comparison"]
        console.print(f"probability of improvement over {len(games)} games, mean over games of P(A > B): {estimate}")
    for root in roots:  # sweep directories: each job's outcome, failed ones included
        jobs = [(d, sweeps.job_summary(d)) for d in sweeps.job_dirs(root)] if root.is_dir() else []
        if not jobs:
            continue
        jt = Table(title=f"{root}: {len(jobs)} jobs", title_justify="left")
        for column in ("job", "status", "overrides", "result"):
            jt.add_column(column)
        for directory, record in jobs:
            finished = record.get("status") == "finished"
            value = f"{record['objective']:.2f}" if finished else record.get("error", "")
            jt.add_row(directory.name, record.get("status", "?"), " ".join(record.get("overrides", [])), value)
        console.print(jt)
    for path, problem in result["problems"]:
        console.print(f"note: {path}: {problem}")


def _overoptimization_table(rows: list[dict]) -> Any:
    """The RLHF groups' final KL, reward and gold (sampled and greedy) beside their SFT model's."""
    from rich.table import Table

    from rlexp.reporting.report import _reward_cell

    ot = Table(title="RLHF: final KL to the SFT model, reward-model score and gold utility of one sampled answer "
               "and of the greedy one (means over runs; --out draws gold_vs_kl.png)", title_justify="left")
    for column in ("group", "runs", "KL", "reward", "gold sampled", "SFT", "gain [95% t-interval]",
                   "gold greedy", "SFT", "gain [95% t-interval]"):
        ot.add_column(column, justify="left" if column == "group" else "right")
    for r in rows:
        (low, high), (low_g, high_g) = r["gold_gain_ci95"], r["gold_gain_greedy_ci95"]
        ot.add_row(r["group"], str(r["runs"]), f"{r['kl']:.3f}",
                   _reward_cell(r["reward"]), f"{r['gold']:.3f}",
                   f"{r['sft_gold']:.3f}", f"{r['gold_gain']:+.3f} [{low:+.3f}, {high:+.3f}]",
                   f"{r['gold_greedy']:.3f}", f"{r['sft_gold_greedy']:.3f}",
                   f"{r['gold_gain_greedy']:+.3f} [{low_g:+.3f}, {high_g:+.3f}]")
    return ot
