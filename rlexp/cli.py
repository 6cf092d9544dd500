"""The ``rlexp`` command: a thin Typer dispatcher in front of Hydra's own entry point.

``rlexp train ARGS`` hands ARGS to the ``@hydra.main`` function unchanged, so Hydra's
override grammar, ``-m/--multirun``, ``--cfg``, sweeper and launcher plugins all work as
Hydra users expect. rlexp only adds one-line error messages for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rlexp.errors import check_writable_dir, first_line
from rlexp.hydra_front import GRAMMAR, _epilog, config_groups, groups_text, hydra_argv, launch_hydra

app = typer.Typer(
    name="rlexp",
    help="Config-driven reinforcement-learning experiments (Hydra configs, PyTorch trainers, W&B logging).",
    epilog=_epilog(),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


# --------------------------------------------------------------------------- commands

TRUST_HELP = ("allow code the run's config names outside rlexp, torch.nn, torch.optim, gymnasium and ale_py "
              "(e.g. env.id=mymodule:Env)")



@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
    help="Train an agent. Arguments are Hydra overrides, e.g. `rlexp train algo=dqn env=cartpole seed=3`.",
)
def train(ctx: typer.Context) -> None:
    args = list(ctx.args)
    if "--from" in args:  # rlexp train --from SWEEP/best.yaml [overrides]: the file's overrides first
        i = args.index("--from")
        if i + 1 >= len(args):
            typer.echo("error: --from needs a file: rlexp train --from SWEEP_DIR/best.yaml", err=True)
            raise typer.Exit(2)
        try:
            args = [*_overrides_from(Path(args[i + 1])), *args[:i], *args[i + 2:]]
        except ValueError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2)
    if "--help" in args or "-h" in args:
        typer.echo("Usage: rlexp train [OVERRIDES...] [-m] [--cfg job|hydra|all]\n")
        typer.echo("Train an agent; every argument is a Hydra override.\n")
        typer.echo("Examples:\n  rlexp train algo=dqn env=cartpole seed=3 algo.lr=5e-4\n"
                   "  rlexp train -m algo.lr=1e-3,5e-4 seed=1,2\n  rlexp train --cfg job\n")
        typer.echo(GRAMMAR + "\n")
        typer.echo(groups_text())
        raise typer.Exit(0)
    from rlexp import sweeps

    try:
        args = hydra_argv(args)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    code = launch_hydra(args)
    if code == 0 and sweeps.last_sweep.get("failed"):
        code = 1  # the sweep ran to its end, but some jobs failed (named above)
    raise typer.Exit(code)


@app.command(
    "resume",
    short_help="Continue a killed or stopped run in place, exactly where its last checkpoint left it.",
    help="Continue RUN_DIR from its newest good checkpoint: networks, optimizers, schedules, RNGs, replay "
    "buffer, envs (replayed), metrics.jsonl and the W&B run. See docs/resume.md for what is guaranteed.",
)
def resume_cmd(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="the run directory `rlexp train` printed"),
    budget: Optional[int] = typer.Option(None, "--budget", metavar="N",
                                         help="a new budget in the run's unit: agent steps, games, examples, pairs "
                                         "or prompts (train a finished run longer)"),
    trust: bool = typer.Option(False, "--trust", help=TRUST_HELP),
) -> None:
    from rlexp.errors import ConfigError, RunStopped, TrainingError
    from rlexp.train import resume

    if budget is not None and budget <= 0:
        typer.echo(f"error: --budget must be > 0, got {budget}", err=True)
        raise typer.Exit(2)
    try:
        resume(run_dir, trust=trust, budget=budget)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    except TrainingError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1)
    except RunStopped as stop:
        raise typer.Exit(stop.exit_code)


def _overrides_from(path: Path) -> list[str]:
    """The ``overrides:`` list of a best.yaml (or any YAML holding one).

    Raises:
        ValueError: the file is missing or holds no override list (one line).
    """
    from omegaconf import ListConfig, OmegaConf

    if path.is_dir():
        path = path / "best.yaml"
    if not path.is_file():
        raise ValueError(f"--from {path}: no such file (a sweep writes SWEEP_DIR/best.yaml when it ends)")
    try:
        data = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - yaml errors of every kind become one line
        raise ValueError(f"--from {path} is not valid YAML: {first_line(str(err))}") from None
    overrides = data.get("overrides") if hasattr(data, "get") else None
    if not isinstance(overrides, ListConfig):
        raise ValueError(f"--from {path} has no 'overrides:' list")
    return [str(o) for o in overrides]


@app.command("list", help="List the config groups and their options.")
def list_options() -> None:
    for group, options in config_groups().items():
        typer.echo(f"{group}:")
        width = max(len(name) for name, _ in options)
        for name, doc in options:
            typer.echo(f"  {name:<{width}}  {doc}")


EVAL_OPTIONS = {  # rlexp eval's family options: parameter -> its flag (each family's trainer names the ones it takes)
    "episodes": "--episodes", "video": "--video", "video_episodes": "--video-episodes", "opponent": "--opponent",
    "games": "--games", "mcts_simulations": "--mcts-simulations", "simulations": "--simulations",
    "samples": "--samples", "prompts": "--prompts"}


@app.command(
    "eval",
    short_help="Evaluate a trained run's checkpoint: episodes (--video records mp4s), board-game matches, or an RL "
    "language model beside its SFT model.",
    help="Evaluate a run's checkpoint, appended to RUN_DIR/evals.jsonl. Gym runs: returns over N episodes, optionally "
    "mp4 videos in RUN_DIR/videos/ (`rlexp eval RUN --episodes 20 --video`). Board-game runs: win/draw/loss with 95% "
    "intervals against an opponent, half the games as each colour (`rlexp eval RUN --opponent mcts --games 200`). "
    "Language-model RL runs: the policy beside its SFT model on new prompts (`rlexp eval RUN --samples 8`).",
)
def eval_run(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR",
                                  help="a run directory written by `rlexp train` (it holds config.yaml)"),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", metavar="latest|best|PATH",
                                   help="latest, best (best in-training eval), a file in checkpoints/ or a path"),
    episodes: Optional[int] = typer.Option(None, "--episodes", "-n", metavar="N",
                                           help="gym runs: episodes to evaluate  [default: the run's eval_episodes]"),
    video: bool = typer.Option(False, "--video", help="gym runs: also record episodes as mp4 files in RUN_DIR/videos/"),
    video_episodes: Optional[int] = typer.Option(None, "--video-episodes", metavar="K",
                                                 help="gym runs: episodes to record with --video  [default: 1]"),
    opponent: Optional[str] = typer.Option(None, "--opponent", metavar="random|mcts|perfect|untrained",
                                           help="board-game runs: the opponent  [default: random]"),
    games: Optional[int] = typer.Option(None, "--games", metavar="N",
                                        help="board-game runs: games, half as each colour  [default: 100]"),
    mcts_simulations: Optional[int] = typer.Option(None, "--mcts-simulations", metavar="N",
                                                   help="board-game runs: the mcts opponent's simulations per move  "
                                                   "[default: the run's algo.mcts_opponent_simulations]"),
    simulations: Optional[int] = typer.Option(None, "--simulations", metavar="N",
                                              help="board-game runs: the agent's search simulations per move"),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="S",
                                       help="env seed  [default: the seed of the run's first in-training eval]"),
    samples: Optional[int] = typer.Option(None, "--samples", metavar="N",
                                          help="language-model RL runs: answers shown side by side with the SFT "
                                          "model's  [default: 8]"),
    prompts: Optional[int] = typer.Option(None, "--prompts", metavar="N",
                                          help="language-model RL runs: new prompts the means are taken over  "
                                          "[default: 256]"),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N"),
    trust: bool = typer.Option(False, "--trust", help=TRUST_HELP),
) -> None:
    from rlexp.build import trainer_class
    from rlexp.config import ALGOS
    from rlexp.errors import ConfigError
    from rlexp.runs import load_run_config

    given = {name: value for name, value in (
        ("episodes", episodes), ("video", video or None), ("video_episodes", video_episodes), ("opponent", opponent),
        ("games", games), ("mcts_simulations", mcts_simulations), ("simulations", simulations),
        ("samples", samples), ("prompts", prompts)) if value is not None}
    try:
        name = load_run_config(run_dir, trust=trust).algo.name
        family = trainer_class(name)
        if not family.eval_options:
            valid = [n for n in ALGOS if trainer_class(n).eval_options]
            raise ConfigError(f"{run_dir} is a run of algo={name}, which rlexp eval does not evaluate again (its "
                              f"evaluations are in metrics.jsonl); valid: runs of algo={', '.join(valid)}")
        wrong = [key for key in given if key not in family.eval_options]
        if wrong:
            flags = ", ".join(EVAL_OPTIONS[k] for k in family.eval_options)
            raise ConfigError(f"{EVAL_OPTIONS[wrong[0]]} is not for runs of algo={name}; their options: {flags}")
        _, lines = family.evaluate_saved(run_dir, checkpoint, seed, device, trust, **given)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    for line in lines:
        typer.echo(line)


@app.command(
    "play",
    short_help="Play a board-game run's agent in the terminal, or replay a recorded game.",
    help="A person against a board-game run's agent (algo=alphazero): the board is printed, you type a move's number "
    "or name. `--replay FILE` prints a recorded game (RUN_DIR/games/*.jsonl) move by move instead.",
)
def play_cmd(
    run_dir: str = typer.Argument(..., metavar="RUN_DIR", help="a board-game run directory"),
    second: bool = typer.Option(False, "--second", help="let the agent move first"),
    simulations: Optional[int] = typer.Option(None, "--simulations", metavar="N",
                                              help="the agent's search simulations per move  [default: the run's]"),
    checkpoint: str = typer.Option("latest", "--checkpoint", "-c", metavar="latest|best|PATH"),
    replay_file: Optional[str] = typer.Option(None, "--replay", metavar="FILE", help="print a recorded game instead"),
    game_number: int = typer.Option(1, "--game", metavar="K", help="with --replay: the K-th game of the file"),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu, cuda or cuda:N"),
    trust: bool = typer.Option(False, "--trust", help=TRUST_HELP),
) -> None:
    from rlexp.errors import ConfigError
    from rlexp.games.agent import load_agent, play, replay

    try:
        if replay_file:
            load_agent(run_dir, checkpoint, device, simulations, trust)  # a board-game run, or one line
            replay(replay_file, game_number)
            return
        play(run_dir, human_first=not second, simulations=simulations, checkpoint=checkpoint, device=device,
             trust=trust)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)


@app.command(
    "report",
    context_settings={"ignore_unknown_options": True},
    short_help="Aggregate runs: IQM/mean/median with 95% CIs, learning curves, sweep jobs.",
    help="Aggregate the runs under PATHS (run directories, sweep directories or folders of them): runs are grouped "
    "by their config minus the seed (or by --by keys), each group's final scores summarized as IQM, mean and median "
    "with 95% bootstrap confidence intervals. --vs compares two sets of runs (probability of improvement). "
    "--out writes report.md, scores.csv and curves.png. `rlexp report A... --vs B...` compares two sets of runs.",
)
def report(
    paths: list[str] = typer.Argument(..., metavar="PATHS... [--vs PATHS...]",
                                      help="run or sweep directories, or folders of runs; after --vs: a second set "
                                      "to compare with (probability of improvement)"),
    by: Optional[str] = typer.Option(None, "--by", metavar="KEY[,KEY]", help="group by these config keys, e.g. algo.lr"),
    last_evals: int = typer.Option(1, "--last-evals", metavar="N", help="final score: mean of a run's last N evaluations"),
    out: Optional[str] = typer.Option(None, "--out", metavar="DIR", help="write report.md, scores.csv and curves.png here"),
    wandb_mode: Optional[str] = typer.Option(None, "--wandb", metavar="online|offline",
                                             help="also log the curves and the table as a W&B run (needs --out)"),
    wandb_project: str = typer.Option("rlexp", "--wandb-project", metavar="NAME", help="W&B project of --wandb"),
) -> None:
    from rlexp.errors import ConfigError
    from rlexp.reporting import report as reporting

    if last_evals < 1:
        typer.echo(f"error: --last-evals must be >= 1, got {last_evals}", err=True)
        raise typer.Exit(2)
    if wandb_mode is not None and (wandb_mode not in ("online", "offline") or not out):
        typer.echo("error: --wandb takes online or offline, and needs --out DIR for the files it logs", err=True)
        raise typer.Exit(2)
    vs = None
    if "--vs" in paths:  # rlexp report A1 A2 --vs B1 B2
        i = paths.index("--vs")
        paths, vs = paths[:i], paths[i + 1:]
        if not paths or not vs:
            typer.echo("error: --vs needs runs on both sides: rlexp report A... --vs B...", err=True)
            raise typer.Exit(2)
    unknown = [p for p in paths + (vs or []) if p.startswith("-")]
    if unknown:
        typer.echo(f"error: unknown option {unknown[0]}; see rlexp report --help", err=True)
        raise typer.Exit(2)
    roots = [Path(p) for p in paths]
    try:
        if out:
            check_writable_dir(out, "--out")
        result = reporting.build(roots, by=by.split(",") if by else None, vs=[Path(p) for p in vs] if vs else None,
                                 last_evals=last_evals)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    from rlexp.reporting.console import print_report

    print_report(result, roots, last_evals)
    if out:
        for written in reporting.write(result, Path(out)):
            typer.echo(f"wrote {written}")
        if wandb_mode:
            typer.echo(f"W&B ({wandb_mode}): {reporting.log_to_wandb(result, Path(out), wandb_mode, wandb_project)}")
