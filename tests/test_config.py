"""Every group option composes into a valid typed config; range checks refuse bad values."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from rlexp.config import GROUP_SCHEMAS, ConfigError, DQNConfig, TrainConfig
from rlexp.hydra_front import config_groups
from tests.conftest import compose_train

ALGO_SCHEMAS = GROUP_SCHEMAS["algo"]

ALL_OPTIONS = [(group, name) for group, options in config_groups().items() for name, _ in options]


def test_groups_are_the_documented_ones():
    assert set(config_groups()) == {"algo", "env", "network", "device", "logger", "launcher", "experiment", "sweep",
                                    "tuned"}


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_option_composes(group, option):
    required = {("env", "atari"): ["env.game=pong"], ("experiment", "dqn_atari_mnih2015"): ["env.game=pong"],
                ("experiment", "der_atari100k"): ["env.game=pong"], ("experiment", "drq_eps_atari100k"): ["env.game=pong"],
                ("env", "openspiel"): ["env.game=hex"], ("env", "text_data"): ["env.train_file=demos.jsonl"]}  # mandatory fields
    if (group, option) == ("tuned", "mujoco"):  # the MuJoCo run settings, which every MuJoCo env option includes
        required[(group, option)] = ["algo=sac", "env=hopper"]
    elif group == "tuned":  # tuned options are <algo>_<env>: they fit their own algorithm and env
        algo = max((a for a in ALGO_SCHEMAS if option.startswith(a + "_")), key=len)  # q_learning_maze
        env = option.removeprefix(algo + "_")
        required[(group, option)] = [f"algo={algo}", f"env={env}", *(["env.game=pong"] if env == "atari" else [])]
    cfg = compose_train([f"{group}={option}", *required.get((group, option), [])])
    assert isinstance(cfg, TrainConfig)
    if group == "algo":
        assert isinstance(cfg.algo, ALGO_SCHEMAS[option])


def test_defaults():
    cfg = compose_train()
    assert isinstance(cfg.algo, DQNConfig)
    assert (cfg.algo.name, cfg.env.id, cfg.device.type, cfg.logger.wandb.mode) == ("dqn", "CartPole-v1", "auto", "offline")
    assert cfg.total_steps == 50_000


def test_overrides_are_typed():
    cfg = compose_train(["algo.lr=5e-4", "seed=3", "network.hidden_sizes=[32,32]"])
    assert cfg.algo.lr == 5e-4 and cfg.seed == 3 and cfg.network.hidden_sizes == [32, 32]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("total_steps=0", "total_steps must be > 0"),
        ("total_steps=-5", "total_steps must be > 0"),
        ("eval_interval_steps=-1", "eval_interval_steps must be >= 0"),
        ("algo.batch_size=0", "algo.batch_size must be > 0"),
        ("algo.gamma=1.5", r"algo.gamma must be in \[0, 1\]"),
        ("algo.epsilon_end=-0.1", r"algo.epsilon_end must be in \[0, 1\]"),
        ("algo.loss=l1", "algo.loss='l1' is not valid; choose one of: huber, mse"),
        ("algo.tau=0", r"algo.tau must be in \(0, 1\]"),
        ("env.num_envs=0", "env.num_envs must be > 0"),
        ("network.activation=swish", "choose one of: relu"),
        ("device.type=tpu", "choose one of: auto, cpu, cuda"),
        ("logger.wandb.mode=cloud", "choose one of: offline, online, disabled"),
        ("seed=-1", "seed must be >= 0"),
    ],
)
def test_range_checks(override, message):
    with pytest.raises(ConfigError, match=message):
        compose_train([override])


def test_every_schema_field_has_a_doc_comment():
    """Each dataclass field carries a one-line `# doc` in rlexp/config/."""
    from pathlib import Path

    import rlexp.config as config

    source = "\n".join(p.read_text() for p in Path(config.__file__).parent.glob("*.py"))
    for schema in [*ALGO_SCHEMAS.values(), *[s for g in config.GROUP_SCHEMAS.values() for s in g.values()], TrainConfig]:
        for f in dataclasses.fields(schema):
            lines = [ln for ln in source.splitlines() if ln.strip().startswith(f"{f.name}:")]
            assert lines and all("#" in ln for ln in lines), f"{schema.__name__}.{f.name} lacks a doc comment"


def test_resolved_config_round_trips_to_yaml():
    cfg = compose_train()
    text = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    assert "lr: 0.0023" in text and "id: CartPole-v1" in text


SCHEMA_GROUPS = ("algo", "env", "network", "device", "logger")
IDENTITY_KEYS = ("name", "type", "id")  # say which option a file is, even where that is the schema's default


@pytest.mark.parametrize("group", SCHEMA_GROUPS)
def test_group_options_do_not_restate_schema_defaults(group):
    """Each default has one source, the schema's field: an option file sets only what differs
    (a restated default drifts, as algo/ppo.yaml's clip_coef once did)."""
    from importlib import resources

    from rlexp.config import flatten

    for path in sorted(resources.files("rlexp.conf").joinpath(group).iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml"):
            continue
        data = OmegaConf.to_container(OmegaConf.create(path.read_text()), resolve=False)
        (schema_ref,) = [d for d in data.pop("defaults") if isinstance(d, str) and d.startswith(f"/schema/{group}/")]
        if schema_ref.endswith(f"@{group}"):  # a `@package _global_` option (it sets other sections too): its own
            data = data.get(group, {})
        schema = GROUP_SCHEMAS[group][schema_ref.split("/")[3].split("@")[0]]
        defaults = flatten(OmegaConf.to_container(OmegaConf.structured(schema), resolve=False))
        restated = [k for k, v in flatten(data).items() if k not in IDENTITY_KEYS and k in defaults and defaults[k] == v]
        assert not restated, f"conf/{group}/{path.name} restates schema defaults: {restated}"


def test_train_yaml_does_not_restate_the_top_level_defaults():
    """conf/train.yaml composes the groups; the top-level settings' defaults live in TrainConfig only."""
    from pathlib import Path

    import yaml

    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "train.yaml").read_text())
    assert not set(data) & set(TrainConfig.__dataclass_fields__), "restated: move the value to TrainConfig"
    cfg = compose_train([])
    assert (cfg.seed, cfg.total_steps, cfg.eval_episodes) == (1, 50_000, 10)  # the schema's, composed


def test_reading_configs_loads_no_domain_code():
    """rlexp.config imports no algorithm, env or game library and no torch: a config is read and
    refused without them (their own checks run when a run is built)."""
    import subprocess
    import sys

    code = ("import sys, rlexp.config; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ale_py', "
            "'pyspiel', 'gymnasium', 'transformers', 'numpy'}), sorted(m for m in sys.modules if m.startswith("
            "('rlexp.envs', 'rlexp.games', 'rlexp.lm', 'rlexp.algos', 'rlexp.trainers'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
