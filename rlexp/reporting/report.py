"""``rlexp report``: tables, learning curves and files for a set of runs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlexp.errors import ConfigError
from rlexp.reporting.collect import RunData, collect, group_runs
from rlexp.reporting.stats import Estimate, aggregate, aggregate_improvement, curve_band, estimate, improvement


@dataclass
class GroupSummary:
    name: str
    runs: list[RunData]
    scores: np.ndarray  # final score per run (NaN where a run has no evaluation)
    mean: Estimate
    median: Estimate
    iqm: Estimate


def summarize_groups(groups: dict[str, list[RunData]], last_evals: int) -> list[GroupSummary]:
    out = []
    for name, runs in groups.items():
        scores = np.array([r.final_score(last_evals) for r in runs])
        valid = scores[~np.isnan(scores)]
        if len(valid) == 0:
            continue
        out.append(GroupSummary(name, runs, scores, estimate(valid, "mean"), estimate(valid, "median"),
                                estimate(valid, "iqm")))
    return sorted(out, key=lambda g: -g.iqm.value)


def curve_data(runs: list[RunData], statistic: str = "mean") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, value, low, high): the statistic of the runs' eval returns at each eval step, with its CI band."""
    steps = np.array(sorted({s for r in runs for s, _ in r.evals}))
    matrix = np.full((len(runs), len(steps)), np.nan)
    index = {s: i for i, s in enumerate(steps)}
    for row, run in enumerate(runs):
        for s, value in run.evals:
            matrix[row, index[s]] = value
    value, low, high = curve_band(matrix, statistic)
    return steps, value, low, high


def band_figure(curves: list[tuple[str, tuple[np.ndarray, ...]]], ylabel: str, frames_per_step: int | None,
                xlabel: str = "agent steps", points: list[tuple[str, list[float], list[float]]] = ()):
    """A figure with one line per ``(label, (steps, value, low, high))`` and its shaded CI band,
    and one set of markers per ``(label, steps, values)`` in ``points`` (published curves)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for label, (steps, value, low, high) in curves:
        line = ax.plot(steps, value, label=label)[0]
        ok = ~np.isnan(low)
        ax.fill_between(steps[ok], low[ok], high[ok], color=line.get_color(), alpha=0.2)
    for label, xs, ys in points:
        ax.plot(xs, ys, linestyle="--", marker="D", color="black", alpha=0.7, label=label)
    if frames_per_step:
        xlabel += f" (x{frames_per_step} = emulator frames)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if curves or points:
        ax.legend(fontsize=8, loc="best")
    return fig


def draw_curves(summaries: list[GroupSummary], statistic: str, frames_per_step: int | None):
    """One line per group (the statistic over runs) with its 95% CI band, and the published
    curve points of the groups' algorithm and task (rlexp/references) near the steps run."""
    curves = [(f"{g.name} ({len(g.runs)} runs)", curve_data(g.runs, statistic)) for g in summaries]
    runs = [r for g in summaries for r in g.runs]
    score = _common({r.score for r in runs}, "eval score")
    return band_figure(curves, f"{score} ({statistic}, 95% CI)", frames_per_step, _common({r.unit for r in runs}, "progress"),
                       points=published_curves(summaries))


def published_curves(summaries: list[GroupSummary]) -> list[tuple[str, list[float], list[float]]]:
    """(label, agent steps, returns) of each published learning curve (a score's ``curve``:
    [budget, return] points, in frames for Atari, agent steps otherwise; ``curve_source`` names
    them) for the groups'
    algorithms and tasks, cut to half again the longest run's steps, so a short run stays legible
    and still shows where the published curve goes next."""
    from rlexp import references

    out, seen = [], set()
    for g in summaries:
        c = g.runs[0].config
        kind, task = _task(c)
        last = max((s for r in g.runs for s, _ in r.evals), default=0)
        for ref, entry, scored in references.published(kind, c.get("algo.name"), task) if task else []:
            published = entry["scores"][scored]
            key = (ref["source"], c.get("algo.name"), scored)
            if "curve" not in published or key in seen:
                continue
            seen.add(key)
            per_step = (c.get("env.frame_skip") or 4) if kind == "atari" else 1
            kept = [(x / per_step, y) for x, y in published["curve"] if x / per_step <= 1.5 * last]
            if kept:
                out.append((f"published: {published.get('curve_source', ref['source'])}", [x for x, _ in kept],
                            [y for _, y in kept]))
    return out


def _common(values: set[str], mixed: str) -> str:
    """The one value all runs share, or ``mixed``."""
    return next(iter(values)) if len(values) == 1 else mixed


def build(paths: list[Path], by: list[str] | None = None, vs: list[Path] | None = None, last_evals: int = 1,
          statistic: str = "iqm") -> dict:
    """Everything a report shows. Raises ConfigError when there are no runs."""
    runs = collect(paths)
    if not runs:
        raise ConfigError(f"no run directories (config.yaml + metrics.jsonl) under {', '.join(map(str, paths))}")
    if vs:
        others = collect(vs)
        if not others:
            raise ConfigError(f"--vs: no run directories under {', '.join(map(str, vs))}")
        groups = {"A: " + " ".join(map(str, paths)): runs, "B: " + " ".join(map(str, vs)): others}
    else:
        groups = group_runs(runs, by)
    summaries = summarize_groups(groups, last_evals)
    comparison = aggregate_comparison = None
    if vs and len(summaries) == 2:
        a, b = (next(s for s in summaries if s.name.startswith(p)) for p in ("A: ", "B: "))
        comparison = improvement(a.scores[~np.isnan(a.scores)], b.scores[~np.isnan(b.scores)])
    if vs:
        methods = groups
        a_games, b_games = (_by_game(g, last_evals) for g in groups.values())
        common = sorted(set(a_games) & set(b_games))
        if len(common) >= 2:
            aggregate_comparison = (common, aggregate_improvement([a_games[k] for k in common],
                                                                  [b_games[k] for k in common]))
    else:
        methods = group_runs([r for r in runs if r.config.get("env.type") == "atari"], by, ignore=TASK_KEYS)
    problems = [(r.path, p) for g in groups.values() for r in g for p in r.problems]
    frames = None
    skips = {r.config.get("env.frame_skip") for r in runs if r.config.get("env.type") == "atari"}
    if len(skips) == 1:
        frames = next(iter(skips))
    return {"summaries": summaries, "comparison": comparison, "references": reference_rows(summaries),
            "aggregates": aggregate_rows(methods, last_evals), "aggregate_comparison": aggregate_comparison,
            "problems": problems, "last_evals": last_evals, "statistic": statistic, "frames_per_step": frames,
            "overoptimization": overoptimization_rows(summaries)}


def overoptimization_rows(summaries: list[GroupSummary]) -> list[dict]:
    """RLHF groups (runs that log eval/kl): each group's final KL to the SFT model, gold
    utility and reward-model score, means over its runs, and every evaluation's point (the
    gold-vs-KL picture: over-optimization is gold falling while the reward rises, Gao et al. 2022)."""
    rows = []
    for g in summaries:
        runs = [r for r in g.runs if r.kl_points]
        if not runs:
            continue
        final = [r.kl_points[-1] for r in runs]
        row = {"group": g.name, "runs": len(runs),
               **{k: float(np.mean([f[k] for f in final])) for k in ("kl", "gold", "gold_greedy", "reward")},
               "points": [r.kl_points for r in runs]}
        for mode in ("", "_greedy"):  # one sampled answer per prompt; the greedy answer
            gains = np.array([r.kl_points[-1]["gold" + mode] - r.kl_points[0]["gold" + mode] for r in runs])  # paired: same prompts
            row.update({f"sft_gold{mode}": float(np.mean([r.kl_points[0]["gold" + mode] for r in runs])),
                        f"gold_gain{mode}": float(gains.mean()), f"gold_gain{mode}_ci95": _t_interval(gains)})
        rows.append(row)
    return rows


def _reward_cell(reward: float) -> str:
    """A group's mean reward-model score; ``-`` where it has none (DPO without a reward model)."""
    return "-" if reward != reward else f"{reward:.3f}"


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% Student-t interval of the mean (NaN with fewer than 2 values): with a handful of
    seeds, a bootstrap's percentile interval is too narrow."""
    from scipy import stats as st

    if len(values) < 2:
        return float("nan"), float("nan")
    half = st.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def draw_overoptimization(rows: list[dict]):
    """Gold utility and reward-model score against the KL to the SFT model, one colour per group:
    each run's evaluations joined in training order from the SFT model (KL 0), a star at the
    group's final mean."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=100)
    gold_ax, reward_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, row in enumerate(rows):
        colour = f"C{k % 10}"
        for n, points in enumerate(row["points"]):
            kl = [p["kl"] for p in points]
            gold_ax.plot(kl, [p["gold"] for p in points], "o-", color=colour, alpha=0.8, ms=3,
                         label=row["group"] if n == 0 else None)
            reward_ax.plot(kl, [p["reward"] for p in points], "o-", color=colour, alpha=0.8, ms=3)
        gold_ax.plot(row["kl"], row["gold"], "*", color=colour, ms=12, mec="black")  # the group's final mean
        reward_ax.plot(row["kl"], row["reward"], "*", color=colour, ms=12, mec="black")
    gold_ax.set(xlabel="KL to the SFT model (nats per answer)", ylabel="gold utility (the labeler's, hidden)",
                title="gold: what the labeler wanted")
    reward_ax.set(xlabel="KL to the SFT model (nats per answer)", ylabel="reward-model score (the proxy)",
                  title="proxy: what the policy optimized")
    for ax in (gold_ax, reward_ax):
        ax.grid(alpha=0.3)
    gold_ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _task(config: dict) -> tuple[str, str | None]:
    """(kind, task) of a run: ("atari", game) or ("gym", gymnasium id)."""
    if config.get("env.type") == "atari":
        return "atari", config.get("env.game")
    return "gym", config.get("env.id")


def _normalized(runs: list[RunData], scores: np.ndarray) -> np.ndarray | None:
    """Human-normalized final scores of Atari runs of one game (None for a game without human/random scores)."""
    from rlexp import references

    game = runs[0].config.get("env.game")
    values = [references.human_normalized(game, x) for x in scores[~np.isnan(scores)]]
    return np.array(values) if values and None not in values else None


def reference_rows(summaries: list[GroupSummary]) -> list[dict]:
    """Published scores beside ours, for the groups a reference covers (rlexp/references); a
    differing protocol or budget is stated instead of compared silently."""
    from rlexp import references

    rows = []
    for g in summaries:
        c = g.runs[0].config
        algo, total = c.get("algo.name"), _budget_run(g.runs)
        kind, task = _task(c)
        hn = None
        if kind == "atari":
            normalized = _normalized(g.runs, g.scores)
            hn = estimate(normalized, "iqm") if normalized is not None else None
        matches = references.published(kind, algo, task) if task else []
        if not matches and hn is not None:
            rows.append({"group": g.name, "source": "", "paper": "", "ours": str(g.iqm), "human_normalized_iqm": str(hn),
                         "comparable": False, "notes": "no published score"})
        for ref, entry, scored in matches:
            published = entry["scores"][scored]
            notes = [] if scored == task else [f"env version differs: ours {task}, published {scored}"]
            if kind == "atari":
                protocol, skip = c.get("env.protocol"), c.get("env.frame_skip") or 4
                ours, theirs, unit = (total * skip if isinstance(total, int) else None), entry["budget_frames"], "frames"
            else:
                protocol = "gym"
                ours, theirs, unit = (total if isinstance(total, int) else None), entry["budget_steps"], "agent steps"
            if protocol != ref["protocol"]:
                notes.append(f"protocol differs: ours {protocol}, published {ref['protocol']}")
            if ours != theirs:
                notes.append(f"budget differs: ours {f'{ours:,}' if ours else 'unknown'} {unit}, published {theirs:,}")
            spread = f" +/- {published['std']}" if published.get("std") is not None else ""
            rows.append({"group": g.name, "source": ref["source"], "paper": f"{published['mean']}{spread}",
                         "ours": str(g.iqm), "human_normalized_iqm": str(hn) if hn else "", "comparable": not notes,
                         "notes": "; ".join(notes), "published_eval": ref["eval"], "published_spread": ref["spread"]})
    return rows


def _budget_run(runs: list[RunData]) -> int | None:
    """The agent steps the group's runs were given: ``total_steps``, or for a run stopped before
    its end (no summary.json) the last step it evaluated, so a run stopped early is compared at
    the budget it used."""
    totals = {r.config.get("total_steps") if r.finished else (r.evals[-1][0] if r.evals else None) for r in runs}
    return totals.pop() if len(totals) == 1 else None


# what tells Atari games apart in a config: dropped to find the runs of one method on several games
TASK_KEYS = ("env.game", "env.id")


def aggregate_rows(named_runs: dict[str, list[RunData]], last_evals: int) -> list[dict]:
    """Per method with Atari runs on 2+ games: IQM, mean and median of the human-normalized final
    scores of all its runs, with 95% stratified bootstrap CIs (runs resampled within each game),
    and the published aggregates of its algorithm at its budget (rlexp/references)."""
    from rlexp import references

    rows = []
    for name, runs in named_runs.items():
        by_game = _by_game(runs, last_evals)
        if len(by_game) < 2:
            continue
        samples = list(by_game.values())
        c = runs[0].config
        total, skip = c.get("total_steps"), c.get("env.frame_skip") or 4
        published = references.published_aggregates(c.get("algo.name"), total * skip if isinstance(total, int) else None)
        rows.append({"method": name, "games": sorted(by_game), "runs": sum(len(s) for s in samples),
                     **{stat: aggregate(samples, stat) for stat in ("iqm", "mean", "median")}, "run_data": runs,
                     "published": published})
    return sorted(rows, key=lambda r: -r["iqm"].value)


def published_aggregate_lines(rows: list[dict]) -> list[str]:
    """One line per published aggregate beside a method's (``aggregate_rows``), saying when ours
    covers fewer games than the published one (then the two are not the same statistic)."""
    lines = []
    for a in rows:
        for p in a.get("published", []):
            values = ", ".join(f"{agent} {value}" for agent, value in p["iqm"].items())
            subset = "" if len(a["games"]) >= p["games"] else \
                f" (ours covers {len(a['games'])} of its {p['games']} games: not the same aggregate)"
            lines.append(f"Published human-normalized IQM beside {a['method']}: {values}; {p['source']}{subset}.")
    return lines


def aggregate_curve_data(runs: list[RunData]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, IQM, low, high): at each eval step, the IQM of the human-normalized eval returns of
    the runs on every game, with its 95% stratified bootstrap band (runs resampled within each game)."""
    from rlexp import references

    games: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        game = run.config.get("env.game")
        if run.config.get("env.type") != "atari" or references.human_normalized(game, 0.0) is None:
            continue
        for step, value in run.evals:
            games.setdefault(game, {}).setdefault(step, []).append(references.human_normalized(game, value))
    steps = np.array(sorted({step for per_step in games.values() for step in per_step}))
    value, low, high = (np.full(len(steps), np.nan) for _ in range(3))
    for i, step in enumerate(steps):
        samples = [per_step[step] for per_step in games.values() if step in per_step]
        e = aggregate(samples, "iqm")
        value[i], low[i], high[i] = e.value, e.low, e.high
    return steps, value, low, high


def draw_aggregate_curves(rows: list[dict], frames_per_step: int | None):
    """One line per method: the IQM human-normalized eval return over all its games, 95% stratified CI band."""
    curves = [(f"{row['method']} ({len(row['games'])} games, {row['runs']} runs)", aggregate_curve_data(row["run_data"]))
              for row in rows]
    return band_figure(curves, "human-normalized eval return (IQM, 95% stratified CI)", frames_per_step)


def _by_game(runs: list[RunData], last_evals: int) -> dict[str, np.ndarray]:
    """Human-normalized final scores per Atari game (games without human scores left out)."""
    games: dict[str, list[RunData]] = {}
    for run in runs:
        if run.config.get("env.type") == "atari":
            games.setdefault(run.config.get("env.game"), []).append(run)
    out = {}
    for game, game_runs in sorted(games.items()):
        normalized = _normalized(game_runs, np.array([r.final_score(last_evals) for r in game_runs]))
        if normalized is not None and len(normalized):
            out[game] = normalized
    return out


def markdown(report: dict) -> str:
    n = report["last_evals"]
    final = "the last evaluation" if n == 1 else f"the mean of the last {n} evaluations"
    lines = [f"Final score of a run: {final} (gym runs: the mean greedy return; board games: win + draw / 2 "
             "against the first evaluation opponent). Intervals: 95% percentile bootstrap "
             "(scipy.stats.bootstrap, 2000 resamples) over runs.", "",
             "| group | runs | IQM | mean | median |", "|---|---|---|---|---|"]
    for g in report["summaries"]:
        lines.append(f"| {g.name} | {len(g.runs)} | {g.iqm} | {g.mean} | {g.median} |")
    if report["comparison"] is not None:
        lines += ["", f"Probability of improvement, P(A > B): {report['comparison']}"]
    if report["references"]:
        lines += ["", "Published vs ours (ours: IQM of final scores, 95% CI):", "",
                  "| group | published | ours | human-normalized IQM | comparable | source / notes |",
                  "|---|---|---|---|---|---|"]
        for r in report["references"]:
            lines.append(f"| {r['group']} | {r['paper']} | {r['ours']} | {r['human_normalized_iqm']} | "
                         f"{'yes' if r['comparable'] else 'no'} | {r['source']}{'; ' if r['notes'] else ''}{r['notes']} |")
    if report["references"]:
        sources = {r["source"]: (r["published_eval"], r["published_spread"]) for r in report["references"] if r["source"]}
        lines += [""] + [f"- {source}: {ev}; {spread}." for source, (ev, spread) in sources.items()]
    if report["aggregates"] or report["aggregate_comparison"]:
        lines += ["", "Aggregate over Atari games: human-normalized final scores (random and human scores of the "
                  "30-minute convention, DQN Zoo / rliable). Intervals: 95% stratified bootstrap, runs resampled "
                  "within each game.", "", "| method | games | runs | IQM | mean | median |", "|---|---|---|---|---|---|"]
        for a in report["aggregates"]:
            lines.append(f"| {a['method']} | {', '.join(a['games'])} | {a['runs']} | {a['iqm']} | {a['mean']} | {a['median']} |")
        lines += [f"\n{line}" for line in published_aggregate_lines(report["aggregates"])]
        if report["aggregate_comparison"]:
            games, estimate_ = report["aggregate_comparison"]
            lines += ["", f"Probability of improvement over {len(games)} games ({', '.join(games)}), "
                      f"the average over games of P(A > B): {estimate_}"]
    if report["overoptimization"]:
        lines += ["", "RLHF: the final evaluation's KL to the SFT model, gold utility (the hidden labeler's) and "
                  "reward-model score, means over runs; the gold gain over the SFT model on the same prompts, with "
                  "its 95% Student-t interval over runs (gold_vs_kl.png draws every evaluation). Sampled: one answer "
                  "per prompt at the run's temperature; greedy: the most likely answer.", "",
                  "| group | runs | KL (nats per answer) | reward | gold sampled | SFT gold sampled | gain sampled "
                  "[95% t-interval] | gold greedy | SFT gold greedy | gain greedy [95% t-interval] |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in report["overoptimization"]:
            (low, high), (low_g, high_g) = r["gold_gain_ci95"], r["gold_gain_greedy_ci95"]
            lines.append(f"| {r['group']} | {r['runs']} | {r['kl']:.3f} | {_reward_cell(r['reward'])} | {r['gold']:.3f} | "
                         f"{r['sft_gold']:.3f} | {r['gold_gain']:+.3f} [{low:+.3f}, {high:+.3f}] | "
                         f"{r['gold_greedy']:.3f} | {r['sft_gold_greedy']:.3f} | "
                         f"{r['gold_gain_greedy']:+.3f} [{low_g:+.3f}, {high_g:+.3f}] |")
    if report["problems"]:
        lines += ["", "Skipped or partial runs:"] + [f"- {path}: {p}" for path, p in report["problems"]]
    return "\n".join(lines) + "\n"


def scores_csv(report: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["group", "run_dir", "seed", "final_score", "finished", "evaluations"])
    for g in report["summaries"]:
        for run, score in zip(g.runs, g.scores):
            writer.writerow([g.name, str(run.path), run.config.get("seed"), score, run.finished, len(run.evals)])
    return buffer.getvalue()


def write(report: dict, out: Path) -> list[Path]:
    """report.md, scores.csv and curves.png in ``out`` (and aggregate_curves.png for methods run on
    several Atari games: their raw returns do not share a scale)."""
    from rlexp.plots import save_figure

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(report))
    (out / "scores.csv").write_text(scores_csv(report))
    fig = draw_curves(report["summaries"], "mean", report["frames_per_step"])
    written = [out / "report.md", out / "scores.csv", save_figure(fig, out / "curves.png")]
    if report["aggregates"]:
        fig = draw_aggregate_curves(report["aggregates"], report["frames_per_step"])
        written.append(save_figure(fig, out / "aggregate_curves.png"))
    if report["overoptimization"]:
        written.append(save_figure(draw_overoptimization(report["overoptimization"]), out / "gold_vs_kl.png"))
    return written


def log_to_wandb(report: dict, out: Path, mode: str, project: str) -> Path:
    """The report as a W&B run (job_type report): the curves image and the group table.

    ``mode``: online (needs a login), offline (files under ``out``/wandb, sync later).
    """
    import wandb

    out = out.resolve()  # absolute: a W&B service shared with another process has its own cwd
    run = wandb.init(project=project, mode=mode, job_type="report", dir=str(out), name=f"report-{out.name}",
                     settings=wandb.Settings(console="off", silent=True, x_disable_stats=True))
    try:
        table = wandb.Table(columns=["group", "runs", "iqm", "iqm_low", "iqm_high", "mean", "median"])
        for g in report["summaries"]:
            table.add_data(g.name, len(g.runs), g.iqm.value, g.iqm.low, g.iqm.high, g.mean.value, g.median.value)
        run.log({"report/curves": wandb.Image(str(out / "curves.png")), "report/groups": table})
        return Path(run.dir)
    finally:
        run.finish()
