"""Property-based tests of the config validation: any value either composes into a valid
TrainConfig or is refused with a one-line ConfigError that names its key.

The expected valid range of every checked field is written down here (``ALGO_FIELDS``,
``OTHER_FIELDS``), independently of rlexp/config/, and hypothesis draws values inside,
at the edges of, and outside those ranges (NaN and infinities included).

Composing with Hydra costs ~0.1 s, too slow for hundreds of examples. Hydra applies
command-line overrides to the config composed from the defaults list, after the whole
list (tuned and experiment presets included) is merged; :func:`compose_fast` does the same
on a cached composition of the group options, with Hydra's own override parser and merge
step, in a few milliseconds. :func:`test_fast_composition_agrees_with_compose_train`
checks that it gives what ``compose_train`` (a full ``rlexp train`` composition) gives.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from hydra import compose, initialize_config_module
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig
from omegaconf.errors import ValidationError

from rlexp.config import GROUP_SCHEMAS, ConfigError, TrainConfig, register_configs, to_typed
from tests.conftest import compose_train


@pytest.fixture(autouse=True)
def _subnormal_floats():
    """Earlier tests' runs apply device.flush_denormal process-wide; hypothesis needs subnormal floats."""
    import torch

    torch.set_flush_denormal(False)

# Each example composes in ~4 ms (compose_fast); the agreement test ~0.1 s per example.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------- composing


@functools.lru_cache(maxsize=None)
def _composed(groups: tuple[str, ...]) -> DictConfig:
    """The config Hydra composes for these group options, before any value override."""
    register_configs()
    with initialize_config_module("rlexp.conf", version_base="1.3"):
        return compose("train", overrides=list(groups))


def compose_fast(groups: tuple[str, ...], overrides: list[str]) -> TrainConfig:
    """``compose_train([*groups, *overrides])`` for value overrides, from a cached composition."""
    cfg = copy.deepcopy(_composed(groups))
    ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(overrides), cfg)
    return to_typed(cfg)


def compose_outcome(compose_fn: Callable[[], TrainConfig]) -> TrainConfig | ConfigError:
    """The typed config, or the ConfigError; any other exception propagates (and fails the test)."""
    try:
        return compose_fn()
    except ConfigError as err:
        return err


def fmt(value: Any) -> str:
    """``value`` as it is written on the command line (repr round-trips floats, nan and inf too)."""
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def named_key(err: ConfigError) -> str:
    """The key a ConfigError names first: ``algo.lr must be...``, ``algo.loss='x' is not...``."""
    return str(err).split(" ", 1)[0].split("=", 1)[0]


def assert_one_line_naming(err: ConfigError, keys: set[str]) -> None:
    msg = str(err)
    assert msg and "\n" not in msg and "\r" not in msg, f"not one line: {msg!r}"
    assert named_key(err) in keys, f"{msg!r} names none of {sorted(keys)}"


# ---------------------------------------------------------------------------- value ranges

FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1.0000000000000002, 0.9999999999999999, 1e-8, 1e308,
               math.nan, math.inf, -math.inf]
INT_EDGES = [0, 1, -1, 2, 10**20, -(10**20)]
ANY_FLOAT = st.one_of(st.sampled_from(FLOAT_EDGES), st.floats())
ANY_INT = st.one_of(st.sampled_from(INT_EDGES), st.integers(-1000, 1000), st.integers())
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
BELOW_ZERO = st.floats(max_value=-5e-324)
ABOVE_ONE = st.floats(min_value=1.0000000000000002)


@dataclass(frozen=True)
class Range:
    """A field's valid values, and strategies for any value and for invalid ones only."""

    valid: Callable[[Any], bool]
    any: st.SearchStrategy
    bad: st.SearchStrategy
    optional: bool = False  # null is valid too

    def draw_any(self) -> st.SearchStrategy:
        return st.one_of(st.none(), self.any) if self.optional else self.any

    def is_valid(self, value: Any) -> bool:
        return (self.optional if value is None else self.valid(value))


POS_INT = Range(lambda v: v > 0, ANY_INT, st.integers(max_value=0))
NONNEG_INT = Range(lambda v: v >= 0, ANY_INT, st.integers(max_value=-1))
POS_FLOAT = Range(lambda v: 0 < v < math.inf, ANY_FLOAT, st.one_of(st.floats(max_value=0.0), NON_FINITE))
NONNEG_FLOAT = Range(lambda v: 0 <= v < math.inf, ANY_FLOAT, st.one_of(BELOW_ZERO, NON_FINITE))
UNIT = Range(lambda v: 0 <= v <= 1, ANY_FLOAT, st.one_of(BELOW_ZERO, ABOVE_ONE, st.just(math.nan)))
OPEN_UNIT = Range(lambda v: 0 < v <= 1, ANY_FLOAT, st.one_of(st.floats(max_value=0.0), ABOVE_ONE, st.just(math.nan)))
FINITE = Range(math.isfinite, ANY_FLOAT, NON_FINITE)
OPT_POS_FLOAT = dataclasses.replace(POS_FLOAT, optional=True)
OPT_POS_INT = dataclasses.replace(POS_INT, optional=True)
N_JOBS = Range(lambda v: v > 0 or v == -1, ANY_INT, st.integers(max_value=0).filter(lambda v: v != -1))

# Every int/float field of every algorithm schema, with its valid range.
ALGO_FIELDS: dict[str, dict[str, Range]] = {
    "dqn": {
        "lr": POS_FLOAT, "optimizer_eps": POS_FLOAT, "rmsprop_alpha": UNIT, "gamma": UNIT,
        "buffer_capacity_transitions": POS_INT, "batch_size": POS_INT, "learning_starts_steps": NONNEG_INT,
        "train_interval_steps": POS_INT, "updates_per_train": POS_INT, "target_update_interval_steps": POS_INT,
        "tau": OPEN_UNIT, "epsilon_start": UNIT, "epsilon_end": UNIT, "epsilon_decay_steps": NONNEG_INT,
        "epsilon_eval": UNIT, "max_grad_norm": OPT_POS_FLOAT,
        "n_step": POS_INT, "priority_exponent": UNIT, "importance_exponent_start": UNIT, "importance_exponent_end": UNIT,
        "noisy_std_init": POS_FLOAT, "v_min": FINITE, "v_max": FINITE,
        # without a value distribution, atoms are meaningless: only null is accepted
        "num_atoms": Range(lambda v: False, ANY_INT, ANY_INT, optional=True),
    },
    "ppo": {
        "lr": POS_FLOAT, "optimizer_eps": POS_FLOAT, "rollout_steps": POS_INT, "num_minibatches": POS_INT,
        "update_epochs": POS_INT, "gamma": UNIT, "gae_lambda": UNIT, "clip_coef": NONNEG_FLOAT,
        "ent_coef": NONNEG_FLOAT, "vf_coef": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT, "target_kl": OPT_POS_FLOAT,
    },
    "a2c": {
        "lr": POS_FLOAT, "optimizer_eps": POS_FLOAT, "rmsprop_alpha": UNIT, "rollout_steps": POS_INT, "gamma": UNIT,
        "gae_lambda": UNIT, "ent_coef": NONNEG_FLOAT, "vf_coef": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT,
    },
    "reinforce": {
        "lr": POS_FLOAT, "optimizer_eps": POS_FLOAT, "gamma": UNIT, "episodes_per_update": POS_INT,
        "ent_coef": NONNEG_FLOAT, "vf_coef": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT,
    },
    **{
        tabular: {
            "gamma": UNIT, "alpha": OPEN_UNIT, "alpha_end": OPEN_UNIT, "alpha_decay_steps": NONNEG_INT,
            "epsilon_start": UNIT, "epsilon_end": UNIT, "epsilon_decay_steps": NONNEG_INT, "q_init": FINITE,
        }
        for tabular in ("q_learning", "sarsa")
    },
    "value_iteration": {
        "gamma": UNIT, "theta": POS_FLOAT, "max_iterations": POS_INT, "plan_interval_steps": POS_INT,
        "epsilon_start": UNIT, "epsilon_end": UNIT, "epsilon_decay_steps": NONNEG_INT, "unknown_value": FINITE,
    },
    "alphazero": {
        "total_games": POS_INT, "log_interval_games": POS_INT, "eval_interval_games": NONNEG_INT,
        "checkpoint_interval_games": NONNEG_INT, "concurrent_games": POS_INT, "simulations": POS_INT,
        "eval_simulations": NONNEG_INT, "c_puct": POS_FLOAT, "dirichlet_alpha": POS_FLOAT, "dirichlet_fraction": UNIT,
        "temperature_moves": NONNEG_INT, "gumbel_considered_actions": POS_INT, "gumbel_c_visit": POS_FLOAT,
        "gumbel_c_scale": POS_FLOAT, "replay_window_positions": POS_INT, "batch_size": POS_INT, "lr": POS_FLOAT,
        "weight_decay": NONNEG_FLOAT, "value_loss_coef": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT,
        "train_interval_games": POS_INT, "updates_per_train": POS_INT, "learning_starts_positions": NONNEG_INT,
        "eval_games": POS_INT, "mcts_opponent_simulations": POS_INT, "figure_positions": NONNEG_INT,
    },
}
ALGO_FIELDS["pretrain"] = ALGO_FIELDS["sft"] = {  # the language-model stages share one schema
    "total_examples": POS_INT, "log_interval_examples": POS_INT, "eval_interval_examples": NONNEG_INT,
    "checkpoint_interval_examples": NONNEG_INT, "dataset_examples": POS_INT, "eval_prompts": POS_INT,
    "batch_size": POS_INT, "lr": POS_FLOAT, "weight_decay": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT,
    "max_answer_tokens": POS_INT,
}
ALGO_FIELDS["reward_model"] = {
    "total_pairs": POS_INT, "log_interval_pairs": POS_INT, "eval_interval_pairs": NONNEG_INT,
    "checkpoint_interval_pairs": NONNEG_INT, "dataset_pairs": POS_INT, "eval_pairs": POS_INT, "batch_size": POS_INT,
    "lr": POS_FLOAT, "weight_decay": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT,
}
_RL_STAGE = {  # the RL stages of RLHF share PolicyOptimizationConfig
    "total_prompts": POS_INT, "log_interval_prompts": POS_INT, "eval_interval_prompts": NONNEG_INT,
    "checkpoint_interval_prompts": NONNEG_INT, "eval_prompts": POS_INT, "batch_prompts": POS_INT,
    "samples_per_prompt": POS_INT, "update_epochs": POS_INT, "minibatch_answers": POS_INT, "lr": POS_FLOAT,
    "weight_decay": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT, "clip_coef": POS_FLOAT, "kl_coef": NONNEG_FLOAT,
    "kl_target": OPT_POS_FLOAT, "kl_horizon_answers": POS_INT, "temperature": POS_FLOAT, "max_answer_tokens": POS_INT,
    "missing_eos_penalty": NONNEG_FLOAT, "samples_logged": NONNEG_INT,
}
ALGO_FIELDS["rlhf_ppo"] = {**_RL_STAGE, "vf_coef": NONNEG_FLOAT, "value_clip": OPT_POS_FLOAT, "gamma": UNIT,
                           "gae_lambda": UNIT}
ALGO_FIELDS["grpo"] = ALGO_FIELDS["rloo"] = {
    **_RL_STAGE, "samples_per_prompt": Range(lambda v: v >= 2, ANY_INT, st.integers(max_value=1))}
ALGO_FIELDS["dpo"] = {
    "beta": POS_FLOAT, "label_smoothing": Range(lambda v: 0 <= v < 0.5, ANY_FLOAT,
                                                 st.one_of(BELOW_ZERO, st.floats(min_value=0.5), st.just(math.nan))),
    "total_pairs": POS_INT, "log_interval_pairs": POS_INT, "eval_interval_pairs": NONNEG_INT,
    "checkpoint_interval_pairs": NONNEG_INT, "dataset_pairs": POS_INT, "eval_pairs": POS_INT, "eval_prompts": POS_INT,
    "batch_size": POS_INT, "lr": POS_FLOAT, "weight_decay": NONNEG_FLOAT, "max_grad_norm": OPT_POS_FLOAT,
    "temperature": POS_FLOAT, "max_answer_tokens": POS_INT, "samples_logged": NONNEG_INT,
    "reference_batch_pairs": POS_INT,
}

_OFF_POLICY = {"lr": POS_FLOAT, "gamma": UNIT, "tau": OPEN_UNIT, "batch_size": POS_INT,
               "buffer_capacity_transitions": POS_INT, "learning_starts_steps": NONNEG_INT,
               "train_interval_steps": POS_INT, "updates_per_train": POS_INT, "n_critics": POS_INT}
ALGO_FIELDS["sac"] = {**_OFF_POLICY, "alpha": OPT_POS_FLOAT, "alpha_init": POS_FLOAT,
                      "actor_update_interval_updates": POS_INT, "target_update_interval_updates": POS_INT}
# Rainbow and QR-DQN are DQN's schema with a value distribution on: at least 2 atoms (null, the
# paper's count, is filled in: not a value that arrives unchanged, so not drawn here)
ALGO_FIELDS["rainbow"] = ALGO_FIELDS["qr_dqn"] = {
    **ALGO_FIELDS["dqn"], "num_atoms": Range(lambda v: v >= 2, ANY_INT, st.integers(max_value=1))}
ALGO_FIELDS["td3"] = ALGO_FIELDS["ddpg"] = {**_OFF_POLICY, "exploration_noise": NONNEG_FLOAT,
                                            "policy_noise": NONNEG_FLOAT, "noise_clip": NONNEG_FLOAT,
                                            "policy_delay": POS_INT}

# String fields that are neither a name nor a fixed set of choices: each has its own test below.
ALGO_FREE_STRINGS: dict[str, set[str]] = {"sac": {"target_entropy"}}  # auto, or a number

# String fields with a fixed set of choices.
ALGO_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    **{dqn: {"optimizer": ("adam", "rmsprop"), "loss": ("huber", "mse"), "replay": ("uniform", "prioritized"),
             "distributional": ("none", "c51", "qr"), "augmentation": ("none", "random_shift")}
       for dqn in ("dqn", "rainbow", "qr_dqn")},
    "a2c": {"optimizer": ("rmsprop", "adam")},
    "reinforce": {"baseline": ("none", "mean", "value")},
    "q_learning": {"alpha_schedule": ("linear", "visits")},
    "sarsa": {"alpha_schedule": ("linear", "visits")},
    "value_iteration": {"model": ("known", "learned")},
    "alphazero": {"root_search": ("puct", "gumbel"), "augment": ("none", "mirror")},
    "rlhf_ppo": {"kl_estimator": ("k1", "k3")},
    "grpo": {"kl_estimator": ("k1", "k3")},
    "rloo": {"kl_estimator": ("k1", "k3")},
    "dpo": {"loss": ("sigmoid", "ipo")},
}

# Checked fields outside algo (composed with the default groups), keyed by their full key.
OTHER_FIELDS: dict[str, Range] = {
    "seed": NONNEG_INT, "seeds_per_job": POS_INT, "total_steps": POS_INT, "eval_interval_steps": NONNEG_INT,
    "eval_episodes": POS_INT, "checkpoint_interval_steps": NONNEG_INT,
    "env.num_envs": POS_INT, "env.max_episode_steps": OPT_POS_INT,
    "network.cnn_hidden_size": POS_INT, "network.log_std_init": FINITE, "network.resnet_blocks": POS_INT,
    "network.resnet_channels": POS_INT, "network.resnet_value_hidden": POS_INT,
    "device.torch_threads": NONNEG_INT,
    "logger.log_interval_steps": POS_INT, "logger.video_interval_evals": NONNEG_INT,
    "logger.figure_interval_episodes": NONNEG_INT, "logger.figure_interval_evals": NONNEG_INT,
    "launcher.n_jobs": N_JOBS, "launcher.timeout_min": POS_INT, "launcher.gpus_per_node": NONNEG_INT,
    "launcher.cpus_per_task": POS_INT, "launcher.mem_gb": POS_INT, "launcher.array_parallelism": POS_INT,
    "launcher.num_cpus": POS_INT, "launcher.num_gpus": NONNEG_FLOAT,
}
OTHER_CHOICES: dict[str, tuple[str, ...]] = {
    "env.vectorization": ("sync", "async"),
    "network.name": ("auto", "mlp", "nature_cnn", "resnet"),
    "network.activation": ("relu", "tanh", "elu", "gelu", "silu"),
    "network.action_bound": ("clip", "squash"),
    "device.replay": ("auto", "device", "host"),
    "logger.progress": ("auto", "bar", "lines", "none"),
    "logger.wandb.mode": ("offline", "online", "disabled"),
    "launcher.name": ("basic", "joblib", "submitit_local", "submitit_slurm", "ray"),
}

ALGO_SCHEMAS = GROUP_SCHEMAS["algo"]
ALGOS = sorted(ALGO_SCHEMAS)


def _is_int_field(schema: type, name: str) -> bool:
    return next(f for f in dataclasses.fields(schema) if f.name == name).type in ("int", "Optional[int]")


def _typed_value(cfg: TrainConfig, key: str) -> Any:
    return functools.reduce(getattr, key.split("."), cfg)


def test_the_ranges_here_cover_every_numeric_and_choice_field():
    """A new algorithm or field must get a range (or choices) here, so the properties cover it."""
    assert set(ALGO_FIELDS) == set(ALGO_SCHEMAS)
    for algo, schema in ALGO_SCHEMAS.items():
        numeric = {f.name for f in dataclasses.fields(schema)
                   if f.type in ("int", "float", "Optional[int]", "Optional[float]")}
        strings = {f.name for f in dataclasses.fields(schema) if f.type == "str"} - {"name"} - ALGO_FREE_STRINGS.get(algo, set())
        assert numeric == set(ALGO_FIELDS[algo]), algo
        assert strings == set(ALGO_CHOICES.get(algo, {})), algo


# ---------------------------------------------------------------------------- properties


@st.composite
def algo_overrides(draw, bad_only: bool = False):
    """(algo, {field: value}) for one to three numeric fields of one algorithm."""
    algo = draw(st.sampled_from(ALGOS))
    fields = draw(st.lists(st.sampled_from(sorted(ALGO_FIELDS[algo])), min_size=1, max_size=3, unique=True))
    values = {}
    for i, name in enumerate(fields):
        rng = ALGO_FIELDS[algo][name]
        # bad_only: the first field is out of range for sure, the others anything
        values[name] = draw(rng.bad if bad_only and i == 0 else rng.draw_any())
    return algo, values


def algo_args(algo: str, values: dict[str, Any]) -> tuple[tuple[str, ...], list[str]]:
    """compose_fast's (groups, overrides) for ``algo`` with these field values."""
    return (f"algo={algo}",), [f"algo.{k}={fmt(v)}" for k, v in values.items()]


# Values each in range but impossible together (checked once every field is in range), as
# (the keys involved, the key the refusal names, whether the values given and the defaults clash).
JOINT_RULES = [  # (the algorithm composed, the keys, the key named, whether they clash)
    ("dqn", ("algo.batch_size", "algo.buffer_capacity_transitions"), "algo.batch_size",
     lambda v: v.get("algo.batch_size", 64) > v.get("algo.buffer_capacity_transitions", 100_000)),  # the tuned dqn_cartpole's
    *((algo, ("algo.batch_size", "algo.buffer_capacity_transitions"), "algo.batch_size",
       lambda v: v.get("algo.batch_size", 256) > v.get("algo.buffer_capacity_transitions", 1_000_000))
      for algo in ("sac", "td3", "ddpg")),
    # Rainbow's noisy layers explore with a fixed epsilon (its defaults: 0 and 0)
    ("rainbow", ("algo.epsilon_start", "algo.epsilon_end"), "algo.noisy",
     lambda v: v.get("algo.epsilon_start", 0.0) != v.get("algo.epsilon_end", 0.0)),
    # C51's support (Rainbow's distribution) needs v_min < v_max; the defaults are the tuned
    # rainbow_cartpole's support [0, 100] (the composed env is CartPole)
    ("rainbow", ("algo.v_min", "algo.v_max"), "algo.v_min",
     lambda v: v.get("algo.v_min", 0.0) >= v.get("algo.v_max", 100.0)),
    ("rainbow", ("algo.batch_size", "algo.buffer_capacity_transitions"), "algo.batch_size",
     lambda v: v.get("algo.batch_size", 64) > v.get("algo.buffer_capacity_transitions", 100_000)),  # the tuned rainbow_cartpole's
    ("qr_dqn", ("algo.batch_size", "algo.buffer_capacity_transitions"), "algo.batch_size",
     lambda v: v.get("algo.batch_size", 32) > v.get("algo.buffer_capacity_transitions", 100_000)),
    ("alphazero", ("algo.batch_size", "algo.replay_window_positions"), "algo.batch_size",
     lambda v: v.get("algo.batch_size", 256) > v.get("algo.replay_window_positions", 50_000)),
    (None, ("seed", "seeds_per_job"), "seed", lambda v: v.get("seed", 1) + v.get("seeds_per_job", 1) - 1 > 2**32 - 1),
    *((algo, ("algo.minibatch_answers", "algo.batch_prompts", "algo.samples_per_prompt"), "algo.minibatch_answers",
       lambda v, d=defaults: v.get("algo.minibatch_answers", 32) > v.get("algo.batch_prompts", d[0])
       * v.get("algo.samples_per_prompt", d[1]))
      for algo, defaults in (("rlhf_ppo", (64, 1)), ("grpo", (16, 8)), ("rloo", (16, 4)))),  # answers per minibatch <= per rollout
]


def _joint_invalid(given: dict[str, Any], algo: str) -> set[str]:
    return {named for only, keys, named, clash in JOINT_RULES
            if only in (None, algo) and any(k in given for k in keys) and clash(given)}


def _check_outcome(outcome, expected: dict[str, tuple[Any, Range]], algo: str = "dqn") -> None:
    """Accepted iff every value is in range (alone and together); accepted values arrive
    unchanged; refusals name a bad key."""
    invalid = {key for key, (value, rng) in expected.items() if not rng.is_valid(value)}
    if not invalid:
        invalid = _joint_invalid({key: value for key, (value, _) in expected.items()}, algo)
    given = {key: value for key, (value, _) in expected.items()}
    if invalid:
        assert isinstance(outcome, ConfigError), f"accepted out-of-range {sorted(invalid)}: {given}"
        assert_one_line_naming(outcome, invalid)
    else:
        assert isinstance(outcome, TrainConfig), f"refused in-range values {given}: {outcome}"
        for key, (value, _) in expected.items():
            assert _typed_value(outcome, key) == value, key


@pytest.mark.slow
@FAST
@given(algo_overrides())
def test_algo_numeric_fields_are_accepted_iff_in_range(case):
    algo, values = case
    outcome = compose_outcome(lambda: compose_fast(*algo_args(algo, values)))
    if isinstance(outcome, TrainConfig):
        assert isinstance(outcome.algo, ALGO_SCHEMAS[algo])
    _check_outcome(outcome, {f"algo.{k}": (v, ALGO_FIELDS[algo][k]) for k, v in values.items()}, algo)


@FAST
@given(algo_overrides(bad_only=True))
def test_out_of_range_algo_values_are_always_refused(case):
    """Negative or > 1 gamma, epsilon outside [0, 1], batch_size <= 0, lr <= 0, NaN, inf, ..."""
    algo, values = case
    outcome = compose_outcome(lambda: compose_fast(*algo_args(algo, values)))
    assert isinstance(outcome, ConfigError), f"accepted {values} for algo={algo}"
    invalid = {f"algo.{k}" for k, v in values.items() if not ALGO_FIELDS[algo][k].is_valid(v)}
    assert_one_line_naming(outcome, invalid)


@FAST
@given(st.data())
def test_other_numeric_fields_are_accepted_iff_in_range(data):
    keys = data.draw(st.lists(st.sampled_from(sorted(OTHER_FIELDS)), min_size=1, max_size=3, unique=True))
    values = {key: data.draw(OTHER_FIELDS[key].draw_any(), label=key) for key in keys}
    outcome = compose_outcome(lambda: compose_fast((), [f"{k}={fmt(v)}" for k, v in values.items()]))
    _check_outcome(outcome, {k: (v, OTHER_FIELDS[k]) for k, v in values.items()})


@FAST
@given(st.data())
def test_out_of_range_other_values_are_always_refused(data):
    key = data.draw(st.sampled_from(sorted(OTHER_FIELDS)))
    value = data.draw(OTHER_FIELDS[key].bad, label=key)
    outcome = compose_outcome(lambda: compose_fast((), [f"{key}={fmt(value)}"]))
    assert isinstance(outcome, ConfigError), f"accepted {key}={fmt(value)}"
    assert_one_line_naming(outcome, {key})


# Words for the choice fields: the valid choices, near misses and any identifier-like text
# (quoted on the command line, so "null", "1" or "true" stay strings).
WORDS = st.text(st.characters(categories=("L", "N"), include_characters="_-. "), max_size=12)


@st.composite
def choice_cases(draw):
    if draw(st.booleans()):
        algo = draw(st.sampled_from(sorted(ALGO_CHOICES)))
        name = draw(st.sampled_from(sorted(ALGO_CHOICES[algo])))
        groups, key, choices = (f"algo={algo}",), f"algo.{name}", ALGO_CHOICES[algo][name]
    else:
        key = draw(st.sampled_from(sorted(OTHER_CHOICES)))
        groups, choices = (), OTHER_CHOICES[key]
    choice = draw(st.sampled_from(choices))
    value = draw(st.one_of(st.just(choice), st.just(choice.upper()), st.just(choice + " "),
                           st.just(choice[:-1]), WORDS))
    return groups, key, choices, value


@FAST
@given(choice_cases())
def test_choice_fields_accept_exactly_their_choices(case):
    groups, key, choices, value = case
    outcome = compose_outcome(lambda: compose_fast(groups, [f"{key}='{value}'"]))
    if value in choices and isinstance(outcome, ConfigError):
        # a valid choice that the preset's other settings rule out (algo=qr_dqn with
        # algo.distributional=none against its num_atoms): refused by a rule between two settings,
        # which its one line names both of
        assert_one_line_naming(outcome, {key})
        assert re.search(r"algo\.\w+", str(outcome).replace(key, "")), f"refused the valid {key}={value!r}: {outcome}"
    elif value in choices:
        assert isinstance(outcome, TrainConfig) and _typed_value(outcome, key) == value
    else:
        assert isinstance(outcome, ConfigError), f"accepted {key}={value!r}"
        assert_one_line_naming(outcome, {key})
        assert str(outcome).endswith("choose one of: " + ", ".join(choices)), str(outcome)


@FAST
@given(st.data())
def test_a_value_of_the_wrong_type_is_refused_by_hydra_naming_the_key(data):
    """Types are Hydra's check, at composition (before the ranges): a ValidationError naming the key,
    which `rlexp` turns into one line (cli.format_error)."""
    algo = data.draw(st.sampled_from(ALGOS))
    name = data.draw(st.sampled_from(sorted(ALGO_FIELDS[algo])))
    schema = ALGO_SCHEMAS[algo]
    wrong = st.one_of(st.just("'abc'"), st.just("true"), st.just("[1,2]"))
    if _is_int_field(schema, name):  # a float with a fraction is no int
        wrong = st.one_of(wrong, st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda v: not v.is_integer()).map(repr))
    text = data.draw(wrong)
    with pytest.raises(ConfigCompositionException) as info:
        compose_fast((f"algo={algo}",), [f"algo.{name}={text}"])
    assert isinstance(info.value.__cause__, ValidationError)
    assert info.value.__cause__.full_key == f"algo.{name}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    algo_overrides().map(lambda case: algo_args(*case)),
    st.sampled_from(sorted(OTHER_FIELDS)).flatmap(
        lambda key: OTHER_FIELDS[key].draw_any().map(lambda v: ((), [f"{key}={fmt(v)}"]))),
))
@pytest.mark.slow
def test_fast_composition_agrees_with_compose_train(case):
    """compose_fast is compose_train (a full Hydra composition, as `rlexp train` does) only faster."""
    groups, overrides = case
    fast = compose_outcome(lambda: compose_fast(groups, overrides))
    full = compose_outcome(lambda: compose_train([*groups, *overrides]))
    assert type(fast) is type(full)
    if isinstance(full, ConfigError):
        assert str(fast) == str(full)
    else:
        assert repr(fast) == repr(full)  # repr, not ==: NaN never equals itself (and is never accepted)


@FAST
@given(st.one_of(st.just("auto"), st.floats(allow_nan=False, allow_infinity=False).map(repr),
                 st.text(alphabet="abcxyz-+. ", min_size=1, max_size=6)))
def test_sac_target_entropy_is_auto_or_a_number(value):
    outcome = compose_outcome(lambda: compose_fast(("algo=sac",), [f"algo.target_entropy='{value}'"]))
    try:
        number = math.isfinite(float(value))
    except ValueError:
        number = False
    if value == "auto" or number:
        assert isinstance(outcome, TrainConfig) and outcome.algo.target_entropy == value
    else:
        assert isinstance(outcome, ConfigError), f"accepted algo.target_entropy={value!r}"
        assert_one_line_naming(outcome, {"algo.target_entropy"})
