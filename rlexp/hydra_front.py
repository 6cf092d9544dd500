"""rlexp's Hydra front end: the config groups for help, the argv Hydra gets, running Hydra's
entry point, and the one line a user error becomes (rlexp.cli holds the commands)."""

from __future__ import annotations

import errno
import os
import re
import sys
from importlib import resources

import typer

from rlexp.errors import first_line

GRAMMAR = """\
Overrides (Hydra grammar), after `rlexp train`:
  group=option          pick a config group option        algo=dqn env=cartpole device=cpu
  key=value             set a field                       seed=3 total_steps=20000
  group.key=value       set a field inside a group        algo.lr=5e-4 env.num_envs=4
  +key=value            add a key the schema lacks        +hydra.job.env_set.FOO=1
  ~key                  delete a key
  -m a=1,2 b=x,y        multirun: one job per combination (a sweep directory, one run dir per job)
  --cfg job             print the composed config and run nothing (--cfg hydra / all)
  hydra.run.dir=PATH    where a single run writes (default runs/<algo>/<env>/<time>_seed<seed>)
  hydra.sweep.dir=PATH  where a multirun writes (default runs/multirun/<time>)
  --from SWEEP/best.yaml  start from a sweep's best overrides (later overrides still win)
  resume=RUN_DIR        continue a killed or stopped run in place (as `rlexp resume RUN_DIR`)
  --info, --hydra-help  Hydra's own diagnostics and help"""


def config_groups() -> dict[str, list[tuple[str, str]]]:
    """``{group: [(option, one-line description), ...]}`` read from the packaged configs."""
    root = resources.files("rlexp.conf")
    groups: dict[str, list[tuple[str, str]]] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith(("_", ".")):
            continue
        options = []
        for f in sorted(entry.iterdir(), key=lambda e: e.name):
            if f.name.endswith(".yaml"):
                # the first comment line that is not a Hydra directive (# @package ...)
                comments = [ln.lstrip("# ").strip() for ln in f.read_text().splitlines() if ln.startswith("#")]
                doc = next((c for c in comments if not c.startswith("@")), "")
                options.append((f.name[: -len(".yaml")], doc))
        if options:
            groups[entry.name] = options
    return groups


def groups_text() -> str:
    lines = ["Config groups (group=option):"]
    for group, options in config_groups().items():
        lines.append(f"  {group:<9} {', '.join(name for name, _ in options)}")
    lines.append("Run `rlexp list` for what each option is, `rlexp train --cfg job` for every field.")
    return "\n".join(lines)


def _epilog() -> str:
    # "\b" stops click from rewrapping a paragraph
    return "\n\n".join("\b\n" + block for block in (GRAMMAR, groups_text()))


# --------------------------------------------------------------------------- errors


# Hydra and OmegaConf raise these without a type (or a field) of their own, so they are matched
# by wording; each has a case in tests/test_cli.py's BAD_INPUTS (the null section: in
# tests/trainers/test_lm.py) that fails when the wording changes. Everything else is matched by type.
SWEEP_WORDING = ("Ambiguous value for argument", "requires --multirun")  # ConfigCompositionException of a=1,2 / choice(...)
MISSING_WORDING = re.compile(r"Missing mandatory value: ([\w.]+)")  # InterpolationToMissingValueError: its full_key is the interpolating key
FLAGS_WORDING = "Only one of --run, --multirun, --cfg"  # the ValueError of Hydra's flag check (-m with --cfg)
NULL_SECTION_WORDING = "Unexpected type for root: NoneType"  # OmegaConf's AssertionError on a key under a null section


def format_error(err: BaseException) -> str:
    """One line naming the problem and, where known, the valid choices."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import MissingMandatoryValue

    from rlexp.errors import ConfigError, omegaconf_error_line

    cause = err.__cause__
    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, MissingConfigException):
        return _missing_config_line(err)
    if any(wording in str(err) for wording in SWEEP_WORDING):
        arg = re.search(r"'(.+?)'", str(err))
        arg = arg.group(1) if arg else "a comma-separated value"
        return f"{arg} is a sweep: add -m to run one job per value, or write key=[a,b] for a list"
    missing = MISSING_WORDING.search(str(err)) or MISSING_WORDING.search(str(cause))
    if isinstance(err, MissingMandatoryValue) or isinstance(cause, MissingMandatoryValue) or missing:
        key = missing.group(1) if missing else getattr(err, "full_key", None) or getattr(cause, "full_key", None)
        example = " (e.g. env=atari env.game=ms_pacman; `rlexp list` shows the games' options)" if key == "env.game" else ""
        return f"{key} is required: add {key}=<value>{example}"
    if isinstance(err, OverrideParseException):
        return f"malformed override: {first_line(err)}"
    line = (_other_unit_line(cause) or _other_algorithm_line(cause)
            or (omegaconf_error_line(cause, command_line=True) if cause is not None else None))
    if line:
        return line
    text = first_line(err)
    if cause is not None and first_line(cause):
        text = f"{text}: {first_line(cause)}"
    return text or type(err).__name__


def _other_unit_line(cause: BaseException | None) -> str | None:
    """The line for a budget key of another family's unit that this run's algorithm section does
    not have (``algo.total_games=10`` on a gym run): the key this run counts with instead."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        return None
    from rlexp.budget import BUDGETS, other_unit_message
    from rlexp.build import trainer_class
    from rlexp.config import ALGOS

    key = str(getattr(cause, "full_key", "") or "")
    other = next((b for b in BUDGETS if key in b.keys().values()), None)
    ours = [name for name, algo in ALGOS.items() if algo.schema is getattr(cause, "object_type", None)]
    if other is None or not ours:
        return None
    budget = getattr(trainer_class(ours[0]), "budget", None)
    if budget is None or budget is other:
        return None
    return other_unit_message(key, other, budget, ours[0])


def _other_algorithm_line(cause) -> str | None:
    """An unknown ``algo.<key>`` that is another algorithm's setting (``algo=ppo algo.n_step=3``):
    whose it is, instead of how to add a key."""
    import dataclasses

    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from rlexp.config import ALGOS
    from rlexp.errors import valid_keys

    key, object_type = getattr(cause, "full_key", None) or "", getattr(cause, "object_type", None)
    if not isinstance(cause, (ConfigKeyError, ConfigAttributeError)) or not key.startswith("algo.") or key.count(".") != 1:
        return None
    name = key.split(".", 1)[1]
    owners = sorted(n for n, a in ALGOS.items()
                    if a.schema is not object_type and name in {f.name for f in dataclasses.fields(a.schema)})
    if not owners:
        return None
    valid = valid_keys(object_type)
    return f"unknown key {key!r}: a setting of algo={', '.join(owners)}" + (f"; valid keys: {valid}" if valid else "")


def _missing_config_line(err) -> str:
    """An unknown group option or group, or a launcher/sweeper whose plugin is not installed."""
    missing = err.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    if group in ("hydra/launcher", "hydra/sweeper") and option in PLUGIN_EXTRAS:
        ours = "launcher" if group.endswith("launcher") else "sweep"
        extra = PLUGIN_EXTRAS[option]
        return (f"{ours} {option} needs a Hydra plugin that is not installed: "
                f"pip install 'rlexp[{extra}]' (or pip install {PLUGIN_PACKAGES[extra]})")
    if group == "env" and err.options and _is_atari_game(option):
        return (f"env={option} has no shortcut; every Atari game runs as env=atari env.game={option} "
                f"(or, under an Atari preset, env.game={option}); shortcuts: {', '.join(err.options)}")
    if group and err.options:
        return f"unknown option {group}={option}; valid choices: {', '.join(err.options)}"
    if group:
        valid = ", ".join(config_groups())
        return f"unknown config group {group!r} (in {group}={option}); valid groups: {valid}"
    return first_line(err)


def _is_atari_game(name: str) -> bool:
    """Whether ``name`` is an ALE ROM (``ms_pacman``, ``boxing``), without loading a ROM."""
    try:
        from ale_py import roms
    except ImportError:
        return False
    return name in roms.get_all_rom_ids()


# Hydra plugins that are optional extras: option -> extra, extra -> its pip packages
PLUGIN_EXTRAS = {"joblib": "joblib", "submitit_local": "slurm", "submitit_slurm": "slurm", "ray": "ray",
                 "optuna": "optuna", "rlexp_optuna": "optuna"}
PLUGIN_PACKAGES = {"joblib": "hydra-joblib-launcher", "slurm": "hydra-submitit-launcher",
                   "ray": "hydra-ray-launcher", "optuna": "hydra-optuna-sweeper"}


def _is_user_error(err: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from rlexp.errors import ConfigError

    if isinstance(err, ValueError) and str(err).startswith(FLAGS_WORDING):
        return True  # Hydra's own command-line check (e.g. -m with --cfg)
    return isinstance(err, (ConfigError, HydraException, OmegaConfBaseException))


def _unwritable_path(err: OSError) -> bool:
    """An output path the user chose that cannot be made or written (no permission, a file in
    the way, a read-only or pseudo file system): bad input, not a crash."""
    return err.filename is not None and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                                                      errno.ENOTDIR, errno.EEXIST, errno.EISDIR)


class _DropLines:
    """A text stream that drops writes starting with a prefix and passes the rest on."""

    def __init__(self, stream, prefix: str):
        self._stream, self._prefix = stream, prefix

    def write(self, text: str) -> int:
        return len(text) if text.startswith(self._prefix) else self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


# Hydra's own command-line flags (its argparse refuses one that comes after an override)
HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                     "-cd", "--experimental-rerun"}
HYDRA_FLAGS = {"-m", "--multirun", "--run", "-r", "--resolve", "--hydra-help", "--version", "--shell-completion",
               "-sc", "--info", "-i"}
HYDRA_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def hydra_argv(args: list[str]) -> list[str]:
    """``args`` with Hydra's flags first and the overrides after them, as Hydra's parser needs.

    Raises:
        ValueError: an unknown flag, a flag without its value, or an override without a key (one line).
    """
    flags, overrides, rest = [], [], list(args)
    while rest:
        arg = rest.pop(0)
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in HYDRA_VALUE_FLAGS:
            if name == arg and not rest:
                raise ValueError(f"{arg} needs a value (e.g. --cfg job)")
            flags += [arg] if name != arg else [arg, rest.pop(0)]
        elif name in HYDRA_FLAGS:
            flags.append(arg)
            if name in ("--info", "-i") and rest and rest[0] in HYDRA_INFO_CHOICES:
                flags.append(rest.pop(0))
        elif arg.startswith("-"):
            raise ValueError(f"unknown option {arg}; `rlexp train --help` lists the options (overrides are key=value)")
        elif arg.lstrip("+~").startswith("=") or not arg.lstrip("+~"):
            raise ValueError(f"malformed override {arg!r}: a key is missing before '=' (write key=value, e.g. seed=5)")
        else:
            overrides.append(_quote_game_string(arg))
    return flags + overrides


def _quote_game_string(arg: str) -> str:
    """``env.game=breakthrough(rows=6,columns=6)`` as Hydra can parse it: an OpenSpiel game
    string with parameters, quoted (Hydra would read its parentheses and commas as its own
    grammar). Already-quoted values and plain names pass unchanged."""
    key, _, value = arg.partition("=")
    if key.lstrip("+~") != "env.game" or "(" not in value or value[:1] in ("'", '"'):
        return arg
    return f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def launch_hydra(args: list[str], prog: str = "rlexp train") -> int:
    """Run the Hydra entry with ``args`` as its command line; return the exit code.

    Bad input (a config or override Hydra or rlexp rejects) prints one ``error:`` line and
    returns 2. A crash inside training is re-raised with its traceback: that is a bug.
    """
    from rlexp.train import main

    saved_argv, saved_full = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [prog, *args]
    saved_stderr = sys.stderr
    if not ({"-m", "--multirun"} & set(args)):
        # Hydra writes "Error executing job with overrides: [...]" before re-raising; for a
        # single run our one line says it all.
        sys.stderr = _DropLines(saved_stderr, "Error executing job with overrides:")
    # Let exceptions reach us instead of Hydra's multi-line report, so we can print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from rlexp.errors import RunStopped, TrainingError

    try:
        main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except RunStopped as stop:  # SIGINT/SIGTERM: checkpoint saved, resume command printed
        return stop.exit_code
    except TrainingError as err:  # a NaN loss, a failing env: the message names the step and the checkpoint
        typer.echo(f"error: {err}", err=True)
        return 1
    except Exception as err:  # noqa: BLE001 - every user error becomes one line
        if _is_user_error(err):
            typer.echo(f"error: {format_error(err)}", err=True)
        elif isinstance(err, AssertionError) and NULL_SECTION_WORDING in str(err):
            typer.echo(f"error: {_absent_section(args)}", err=True)  # OmegaConf, on a key under a null section
        elif isinstance(err, OSError) and _unwritable_path(err):
            typer.echo(f"error: cannot write {err.filename}: {err.strerror}; choose another hydra.run.dir "
                       "(hydra.sweep.dir with -m)", err=True)
        else:
            raise
        return 2
    finally:
        sys.argv, sys.stderr = saved_argv, saved_stderr
        if saved_full is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full
    return 0


def _absent_section(args: list[str]) -> str:
    """The line for an override under a section this run's config leaves null (``lora.*`` with
    ``algo=pretrain``, ``model.*`` with a gym algorithm)."""
    from rlexp.config import TrainConfig

    optional = {name for name, f in TrainConfig.__dataclass_fields__.items() if f.default is None and name != "resume"}
    for arg in args:
        key = arg.split("=", 1)[0].lstrip("+~")
        if "." in key and key.split(".", 1)[0] in optional:
            section = key.split(".", 1)[0]
            users = ", ".join(_algos_with_section(section)) or "no algorithm"
            return f"{key}: this run's config has no {section} section ({section}.* is for algo={users})"
    return "an override sets a key under a section this run's config does not have"


def _algos_with_section(section: str) -> list[str]:
    """The algorithms whose config (``conf/algo/<name>.yaml``) has the optional ``section``."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    users = []
    for path in sorted(files("rlexp.conf").joinpath("algo").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            defaults = OmegaConf.create(path.read_text()).get("defaults") or []
            if any(isinstance(d, str) and d.startswith(f"/schema/{section}/") for d in defaults):
                users.append(path.name[:-5])
    return users
