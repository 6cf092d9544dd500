"""The run-wide groups (network, device, logger, launcher) and :class:`TrainConfig`, the root
that composes them with an algorithm and an env."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from rlexp.config.checks import finite, non_negative, one_of, positive
from rlexp.config.lm import LanguageModelConfig, LoraSettings, RewardConfig
from rlexp.errors import ConfigError

ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu")


@dataclass
class NetworkConfig:
    """Function approximator; input and output sizes come from the env's spaces at build time."""

    name: str = "auto"  # architecture: auto (nature_cnn for frames, resnet for boards, else mlp), mlp, nature_cnn or resnet
    hidden_sizes: List[int] = field(default_factory=lambda: [256, 256])  # MLP: width of each hidden layer
    activation: str = "relu"  # MLP: hidden activation: relu, tanh, elu, gelu or silu
    cnn_hidden_size: int = 512  # Nature CNN: units of the fully connected layer after the convolutions
    shared_trunk: Optional[bool] = None  # actor-critic: actor and critic share hidden layers; null: shared CNN, separate MLPs
    normalize_obs: bool = False  # actor-critic: normalize vector observations by running mean/std (saved with the weights)
    log_std_init: float = 0.0  # continuous actions: initial log std of the Gaussian policy (state-independent)
    action_bound: str = "clip"  # continuous actions: clip the Gaussian draw to the bounds, or squash it (tanh)
    resnet_blocks: int = 5  # board games' residual tower: blocks (AlphaZero: 19 or 39)
    resnet_channels: int = 64  # board games' residual tower: channels per convolution (AlphaZero: 256)
    resnet_value_hidden: int = 64  # board games: hidden units of the value head (AlphaZero: 256)

    def __post_init__(self) -> None:
        one_of("network", "name", self.name, ("auto", "mlp", "nature_cnn", "resnet"))
        positive("network", resnet_blocks=self.resnet_blocks, resnet_channels=self.resnet_channels,
                  resnet_value_hidden=self.resnet_value_hidden)
        one_of("network", "action_bound", self.action_bound, ("clip", "squash"))
        positive("network", cnn_hidden_size=self.cnn_hidden_size)
        finite("network", log_std_init=self.log_std_init)
        one_of("network", "activation", self.activation, ACTIVATIONS)
        for width in self.hidden_sizes:
            if not isinstance(width, int) or width <= 0:
                raise ConfigError(f"network.hidden_sizes must be positive integers, got {list(self.hidden_sizes)}")


@dataclass
class DeviceConfig:
    """Where tensors live and how many CPU threads torch may use."""

    type: str = "auto"  # auto (CUDA when present, else CPU), cpu, cuda or cuda:N
    torch_threads: int = 0  # torch intra-op CPU threads; 0 keeps torch's default (one per core)
    deterministic: bool = False  # ask torch for deterministic kernels (slower on GPU)
    flush_denormal: bool = True  # CPU: treat denormal floats as zero (Adam's tiny moments otherwise run several times slower)
    amp: bool = False  # mixed precision: bfloat16 autocast for network passes (a GPU speed-up; losses stay fp32)
    compile: bool = False  # torch.compile the networks (pays off on GPUs for long runs; compiling takes ~1 min)
    replay: str = "auto"  # replay storage: auto (on the GPU when it fits in free memory, else pinned host), device or host
    fast_path: str = "auto"  # auto: hand-written gradients where they apply (DQN and PPO on MLPs, SAC/TD3/DDPG with relu or tanh, QR-DQN's loss; autograd's numbers, faster on CPU); off: autograd always

    def __post_init__(self) -> None:
        non_negative("device", torch_threads=self.torch_threads)
        one_of("device", "replay", self.replay, ("auto", "device", "host"))
        one_of("device", "fast_path", self.fast_path, ("auto", "off"))
        if self.type not in ("auto", "cpu", "cuda", "mps") and not self.type.startswith("cuda:"):
            raise ConfigError(f"device.type={self.type!r} is not valid; choose one of: auto, cpu, cuda, cuda:N, mps")


@dataclass
class WandbConfig:
    """Weights & Biases run settings (offline by default: no account, no network)."""

    mode: str = "offline"  # offline (files in the run dir), online (needs a login) or disabled
    project: str = "rlexp"  # W&B project
    entity: Optional[str] = None  # W&B team or user; null uses your default
    group: Optional[str] = None  # W&B group; null groups a multirun's jobs by its sweep directory
    tags: List[str] = field(default_factory=list)  # W&B tags
    name: Optional[str] = None  # W&B run name; null uses the run directory's name

    def __post_init__(self) -> None:
        one_of("logger.wandb", "mode", self.mode, ("offline", "online", "disabled"))


@dataclass
class LoggerConfig:
    """Where metrics go: metrics.jsonl always, W&B and the console as set here."""

    log_interval_steps: int = 2_000  # agent steps between aggregated metric events
    progress: str = "auto"  # console output: auto (bar on a terminal, lines otherwise), bar, lines or none
    video_interval_evals: int = 0  # record one greedy episode as mp4 every N evaluations (videos/, W&B); 0 = never
    figures: bool = True  # PNGs in figures/ (and W&B images) at the end: learning curve; tabular: policy, values, model
    figure_interval_episodes: int = 0  # tabular pictures also every N training episodes (figures/*_episode<N>.png); 0 = end only
    figure_interval_evals: int = 0  # pictures also every N evaluations (figures/*_eval<N>.png); 0 = end only
    wandb: WandbConfig = field(default_factory=WandbConfig)  # W&B settings

    def __post_init__(self) -> None:
        positive("logger", log_interval_steps=self.log_interval_steps)
        non_negative("logger", video_interval_evals=self.video_interval_evals,
                      figure_interval_episodes=self.figure_interval_episodes,
                      figure_interval_evals=self.figure_interval_evals)
        one_of("logger", "progress", self.progress, ("auto", "bar", "lines", "none"))
        for key in ("figure_interval_episodes", "figure_interval_evals"):
            if getattr(self, key) and not self.figures:
                raise ConfigError(f"logger.{key}={getattr(self, key)} draws pictures, but logger.figures=false turns "
                                  "them off; drop one of the two")


@dataclass
class LauncherConfig:
    """Where a multirun's jobs run (conf/launcher/); the fields each launcher reads are noted."""

    name: str = "basic"  # basic (one after another, in this process), joblib, submitit_local, submitit_slurm or ray
    n_jobs: int = 2  # joblib: parallel worker processes
    timeout_min: int = 60  # submitit: job time limit, minutes
    partition: Optional[str] = None  # submitit_slurm: SLURM partition; null uses the cluster's default
    gpus_per_node: int = 0  # submitit: GPUs per job
    cpus_per_task: int = 2  # submitit: CPU cores per job
    mem_gb: int = 8  # submitit: memory per job, GiB
    array_parallelism: int = 64  # submitit: jobs of the array running at once
    address: Optional[str] = None  # ray: an existing cluster (ray://host:10001, or auto); null starts a local Ray
    num_cpus: int = 1  # ray: CPUs each job reserves
    num_gpus: float = 0.0  # ray: GPUs each job reserves (fractions share a GPU)

    def __post_init__(self) -> None:
        o = "launcher"
        one_of(o, "name", self.name, ("basic", "joblib", "submitit_local", "submitit_slurm", "ray"))
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise ConfigError(f"launcher.n_jobs must be > 0 (or -1: one per core), got {self.n_jobs}")
        positive(o, timeout_min=self.timeout_min, cpus_per_task=self.cpus_per_task, mem_gb=self.mem_gb,
                  array_parallelism=self.array_parallelism, num_cpus=self.num_cpus)
        non_negative(o, gpus_per_node=self.gpus_per_node, num_gpus=self.num_gpus)


MAX_SEED = 2**32 - 1  # np.random.seed's upper bound


@dataclass
class TrainConfig:
    """One training run."""

    algo: Any = MISSING  # the algorithm: a schema from rlexp.config (e.g. DQNConfig)
    env: Any = MISSING  # the environment: EnvConfig or AtariEnvConfig
    network: NetworkConfig = MISSING  # the function approximator
    device: DeviceConfig = MISSING  # compute device
    logger: LoggerConfig = MISSING  # metric sinks
    launcher: LauncherConfig = MISSING  # where a multirun's jobs run
    seed: int = 1  # seeds python, numpy, torch and the envs
    seeds_per_job: int = 1  # seeds run by one job (seed, seed+1, ...); the job returns their mean final eval
    total_steps: int = 50_000  # agent steps to train (summed over parallel envs)
    eval_interval_steps: int = 5_000  # agent steps between evaluations; 0 evaluates only at the end
    eval_episodes: int = 10  # episodes per evaluation
    checkpoint_interval_steps: int = 25_000  # agent steps between periodic checkpoints; 0 saves only the last
    checkpoint_keep_last: int = 3  # periodic checkpoints kept (oldest removed); 0 keeps all
    checkpoint_replay: bool = True  # save the replay buffer / partial rollout with each checkpoint (exact resume)
    resume: Optional[str] = None  # a run directory to continue in place (rlexp train resume=DIR)
    model: Optional[LanguageModelConfig] = None  # language-model stages only (set by their algo config)
    lora: Optional[LoraSettings] = None  # language-model stages only (set by their algo config)
    reward: Optional[RewardConfig] = None  # the RL stages of RLHF only (set by their algo config)
    pipeline: Dict[str, List[str]] = field(default_factory=dict)  # stages run first, in order, each in its own run dir: algo name -> its overrides (experiment=rlhf_arithmetic)

    def __post_init__(self) -> None:
        positive("", total_steps=self.total_steps, eval_episodes=self.eval_episodes, seeds_per_job=self.seeds_per_job)
        non_negative("", eval_interval_steps=self.eval_interval_steps,
                      checkpoint_interval_steps=self.checkpoint_interval_steps,
                      checkpoint_keep_last=self.checkpoint_keep_last)
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.seed + self.seeds_per_job - 1 > MAX_SEED:
            raise ConfigError(f"seed must be <= {MAX_SEED} (NumPy's seed range; with seeds_per_job, the last seed "
                              f"too), got {self.seed + self.seeds_per_job - 1}")
