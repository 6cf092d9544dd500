"""Schemas of the language-model family: the supervised stages, the reward model, the RL
stages (PPO, GRPO), the model, its LoRA adapters, the reward source and the shipped task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING

from rlexp.config.checks import non_negative, one_of, positive, unit_interval
from rlexp.errors import ConfigError


@dataclass
class LanguageModelingConfig:
    """A supervised language-model stage: next-token loss on texts (pretrain: the task's
    corpus, every token; sft: demonstrations, the answer's tokens only). Progress counts
    examples (sequences trained on)."""

    name: str = "sft"  # registry key: pretrain (a base model from the corpus) or sft (demonstrations)
    total_examples: int = 20_000  # sequences to train on (the budget; the dataset repeats in new orders)
    log_interval_examples: int = 2_000  # examples between aggregated metric events
    eval_interval_examples: int = 10_000  # examples between evaluations; 0 evaluates only at the end
    checkpoint_interval_examples: int = 10_000  # examples between periodic checkpoints; 0 saves only the last
    dataset_examples: int = 4_000  # texts generated for training (corpus lines or demonstrations)
    eval_prompts: int = 200  # held-out prompts (and texts) per evaluation
    batch_size: int = 64  # sequences per gradient step
    lr: float = 3e-3  # AdamW learning rate (LoRA adapters usually take a larger one than full fine-tuning)
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables
    max_answer_tokens: int = 12  # evaluation: answer tokens generated per prompt (greedy) before giving up

    def __post_init__(self) -> None:
        o = "algo"
        one_of(o, "name", self.name, ("pretrain", "sft"))
        positive(o, total_examples=self.total_examples, log_interval_examples=self.log_interval_examples,
                  dataset_examples=self.dataset_examples, eval_prompts=self.eval_prompts, batch_size=self.batch_size,
                  lr=self.lr, max_answer_tokens=self.max_answer_tokens)
        non_negative(o, eval_interval_examples=self.eval_interval_examples, weight_decay=self.weight_decay,
                      checkpoint_interval_examples=self.checkpoint_interval_examples)
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class RewardModelConfig:
    """RLHF's reward model: the language model with a scalar head on the last token, trained on
    preference pairs with the Bradley-Terry loss -log sigmoid(r_chosen - r_rejected). Progress
    counts pairs."""

    name: str = "reward_model"  # registry key
    total_pairs: int = 20_000  # preference pairs to train on (the budget; the dataset repeats in new orders)
    log_interval_pairs: int = 2_000  # pairs between aggregated metric events
    eval_interval_pairs: int = 10_000  # pairs between evaluations; 0 evaluates only at the end
    checkpoint_interval_pairs: int = 10_000  # pairs between periodic checkpoints; 0 saves only the last
    dataset_pairs: int = 4_000  # labelled pairs generated for training
    eval_pairs: int = 1_000  # held-out pairs per evaluation (accuracy against their labels)
    batch_size: int = 32  # pairs per gradient step
    lr: float = 3e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables

    def __post_init__(self) -> None:
        o = "algo"
        positive(o, total_pairs=self.total_pairs, log_interval_pairs=self.log_interval_pairs,
                  dataset_pairs=self.dataset_pairs, eval_pairs=self.eval_pairs, batch_size=self.batch_size, lr=self.lr)
        non_negative(o, eval_interval_pairs=self.eval_interval_pairs, weight_decay=self.weight_decay,
                      checkpoint_interval_pairs=self.checkpoint_interval_pairs)
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class DPOConfig:
    """DPO (Rafailov et al. 2023): the policy learns from preference pairs directly, the loss a
    logistic one on how much more the policy than the reference (the SFT model) prefers the
    chosen answer; no reward model, no sampling during training. Progress counts pairs."""

    name: str = "dpo"  # registry key
    loss: str = "sigmoid"  # sigmoid (DPO; with label_smoothing: conservative DPO) or ipo (Azar et al. 2023)
    beta: float = 0.1  # strength of the pull to the reference: the implicit reward is beta x log(pi / ref) (TRL: 0.1)
    label_smoothing: float = 0.0  # sigmoid loss: the assumed probability that a label is flipped (cDPO); 0: plain DPO
    total_pairs: int = 20_000  # preference pairs to train on (the budget; the dataset repeats in new orders)
    log_interval_pairs: int = 2_000  # pairs between aggregated metric events
    eval_interval_pairs: int = 10_000  # pairs between evaluations; 0 evaluates only at the end
    checkpoint_interval_pairs: int = 10_000  # pairs between periodic checkpoints; 0 saves only the last
    dataset_pairs: int = 20_000  # labelled pairs generated for training (the pipeline's reward model sees the same 20k)
    eval_pairs: int = 1_000  # held-out pairs per evaluation (the implicit reward's accuracy against their labels)
    eval_prompts: int = 256  # held-out prompts per evaluation (one sampled answer each and the greedy one: gold and KL)
    batch_size: int = 32  # pairs per gradient step
    reference_batch_pairs: int = 512  # the reference's log-probabilities are computed for this many upcoming pairs in one pass (each pair once); 1: each batch its own
    lr: float = 2e-3  # AdamW learning rate (the RL stages' default, so no method is tuned more than another)
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables
    temperature: float = 1.0  # evaluation: sampling temperature of the answers
    max_answer_tokens: int = 12  # evaluation: an answer is cut after this many tokens
    samples_logged: int = 8  # evaluation answers written to samples.jsonl and the W&B table, per evaluation

    def __post_init__(self) -> None:
        o = "algo"
        one_of(o, "loss", self.loss, ("sigmoid", "ipo"))
        positive(o, beta=self.beta, total_pairs=self.total_pairs, log_interval_pairs=self.log_interval_pairs,
                  dataset_pairs=self.dataset_pairs, eval_pairs=self.eval_pairs, eval_prompts=self.eval_prompts,
                  batch_size=self.batch_size, lr=self.lr, temperature=self.temperature,
                  max_answer_tokens=self.max_answer_tokens, reference_batch_pairs=self.reference_batch_pairs)
        non_negative(o, eval_interval_pairs=self.eval_interval_pairs, weight_decay=self.weight_decay,
                      checkpoint_interval_pairs=self.checkpoint_interval_pairs, samples_logged=self.samples_logged)
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"algo.label_smoothing must be in [0, 0.5) (the probability a label is flipped), "
                              f"got {self.label_smoothing}")
        if self.loss == "ipo" and self.label_smoothing:
            raise ConfigError(f"algo.label_smoothing={self.label_smoothing} applies to algo.loss=sigmoid; "
                              "IPO has none: drop it or set algo.loss=sigmoid")
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)


@dataclass
class PolicyOptimizationConfig:
    """RLHF's last stage, shared by rlhf_ppo, grpo and rloo: the policy (from an SFT run) writes answers
    to the task's prompts, the reward model (``reward.from_run``) scores them, and the policy
    learns from the score with a per-token KL penalty to the reference (the SFT model: the
    policy with its LoRA adapters disabled). Progress counts prompts."""

    name: str = MISSING  # registry key: rlhf_ppo, grpo or rloo
    total_prompts: int = 2_048  # prompts answered and learned from (the budget)
    log_interval_prompts: int = 256  # prompts between aggregated metric events
    eval_interval_prompts: int = 512  # prompts between evaluations; 0 evaluates only at the end
    checkpoint_interval_prompts: int = 1_024  # prompts between periodic checkpoints; 0 saves only the last
    eval_prompts: int = 256  # held-out prompts per evaluation (one sampled answer each, scored by gold, reward and KL)
    batch_prompts: int = 64  # prompts per rollout (each answered samples_per_prompt times)
    samples_per_prompt: int = 1  # answers sampled per prompt (grpo, rloo: the group size)
    update_epochs: int = 2  # passes over each rollout
    minibatch_answers: int = 32  # answers per gradient step
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: Optional[float] = 1.0  # gradient-norm clip; null disables
    clip_coef: float = 0.2  # PPO's clip range of the probability ratio
    kl_coef: float = 0.2  # weight of the KL to the reference (initial value when kl_target is set)
    kl_estimator: str = "k1"  # per-token KL estimate: k1 (log p - log p_ref) or k3 (r - 1 - log r, never negative)
    kl_target: Optional[float] = None  # adaptive coefficient (Ziegler et al. 2019) steering the KL per answer here; null: fixed
    kl_horizon_answers: int = 10_000  # adaptive coefficient: answers over which it moves by at most 20%
    temperature: float = 1.0  # sampling temperature of the answers (training and evaluation)
    max_answer_tokens: int = 12  # an answer is cut after this many tokens
    missing_eos_penalty: float = 1.0  # subtracted from the score of an answer cut before its end-of-sequence token
    samples_logged: int = 8  # evaluation answers written to samples.jsonl and the W&B table, per evaluation

    def __post_init__(self) -> None:
        o = "algo"
        one_of(o, "kl_estimator", self.kl_estimator, ("k1", "k3"))
        positive(o, total_prompts=self.total_prompts, log_interval_prompts=self.log_interval_prompts,
                  eval_prompts=self.eval_prompts, batch_prompts=self.batch_prompts,
                  samples_per_prompt=self.samples_per_prompt, update_epochs=self.update_epochs,
                  minibatch_answers=self.minibatch_answers, lr=self.lr, clip_coef=self.clip_coef,
                  kl_horizon_answers=self.kl_horizon_answers, temperature=self.temperature,
                  max_answer_tokens=self.max_answer_tokens)
        non_negative(o, eval_interval_prompts=self.eval_interval_prompts, weight_decay=self.weight_decay,
                      checkpoint_interval_prompts=self.checkpoint_interval_prompts, kl_coef=self.kl_coef,
                      missing_eos_penalty=self.missing_eos_penalty, samples_logged=self.samples_logged)
        if self.max_grad_norm is not None:
            positive(o, max_grad_norm=self.max_grad_norm)
        if self.kl_target is not None:
            positive(o, kl_target=self.kl_target)
        answers = self.batch_prompts * self.samples_per_prompt
        if self.minibatch_answers > answers:
            raise ConfigError(f"algo.minibatch_answers={self.minibatch_answers} exceeds the rollout's {answers} answers "
                              "(algo.batch_prompts x algo.samples_per_prompt)")


@dataclass
class RLHFPPOConfig(PolicyOptimizationConfig):
    """PPO on the token-level MDP (Ziegler et al. 2019; Ouyang et al. 2022): the reward model's
    score at the answer's last token, -kl_coef x KL at every token, a value head on the
    policy's last hidden state, GAE, whitened advantages and the clipped surrogate (rlexp's
    PPO functions)."""

    name: str = "rlhf_ppo"  # registry key
    vf_coef: float = 0.1  # weight of the value loss
    value_clip: Optional[float] = 0.2  # clip of the value update around the rollout's values; null disables
    gamma: float = 1.0  # discount over answer tokens
    gae_lambda: float = 0.95  # GAE lambda over answer tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative("algo", vf_coef=self.vf_coef)
        unit_interval("algo", gamma=self.gamma, gae_lambda=self.gae_lambda)
        if self.value_clip is not None:
            positive("algo", value_clip=self.value_clip)


@dataclass
class GRPOConfig(PolicyOptimizationConfig):
    """GRPO (Shao et al. 2024): no critic; each answer's advantage is its score against the
    other answers to the same prompt (samples_per_prompt of them), the KL to the reference a
    term of the loss (k3 by default, as in the paper)."""

    name: str = "grpo"  # registry key
    samples_per_prompt: int = 8  # answers sampled per prompt: the group each is compared with
    batch_prompts: int = 16  # prompts per rollout
    kl_estimator: str = "k3"  # per-token KL estimate in the loss: k3 (unbiased, never negative) or k1
    kl_coef: float = 0.05  # beta: weight of the KL term of the loss

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 2:  # before the shared checks: they would name the minibatch instead
            raise ConfigError(f"algo.samples_per_prompt must be >= 2 for grpo (a group to compare with), "
                              f"got {self.samples_per_prompt}")
        super().__post_init__()


@dataclass
class RLOOConfig(PolicyOptimizationConfig):
    """RLOO (Ahmadian et al. 2024): no critic; each answer's advantage is its KL-penalised
    reward minus the mean of the other answers to its prompt (samples_per_prompt of them);
    TRL's RLOOTrainer defaults."""

    name: str = "rloo"  # registry key
    samples_per_prompt: int = 4  # answers sampled per prompt: each one's baseline is the others' mean (Ahmadian et al.: k = 4)
    batch_prompts: int = 16  # prompts per rollout
    kl_coef: float = 0.05  # beta: the KL to the reference, summed over the answer, subtracted from its reward (TRL: 0.05)
    whiten_advantages: bool = False  # whiten the advantages over the rollout's answer tokens (TRL: normalize_advantage, off)

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 2:  # before the shared checks: they would name the minibatch instead
            raise ConfigError(f"algo.samples_per_prompt must be >= 2 for rloo (each answer's baseline is the "
                              f"others' mean), got {self.samples_per_prompt}")
        super().__post_init__()


@dataclass
class RewardConfig:
    """Where the RL stage's reward comes from: the reward model an earlier stage trained, or a
    local checkpoint. One is required by the RL stages; DPO's evaluations use it when given."""

    from_run: Optional[str] = None  # a reward_model run directory (its model/ is the reward model); required by the RL stages, optional for dpo (its evaluations then report the reward too)
    name_or_path: Optional[str] = None  # instead: a local sequence-classification checkpoint (one score; the policy's tokenizer)

    def __post_init__(self) -> None:
        if self.from_run and self.name_or_path:
            raise ConfigError("reward.from_run and reward.name_or_path both name a reward model; set one")


@dataclass
class LanguageModelConfig:
    """The language model of an RLHF stage: built small from these sizes (random init, no
    download), the model a previous stage saved, or a local directory."""

    from_run: Optional[str] = None  # start from the model an earlier stage's run saved in <run>/model/
    name_or_path: Optional[str] = None  # a local directory (or a cached hub id) with a causal LM and its tokenizer
    hidden_size: int = 64  # built model: width of the residual stream
    layers: int = 2  # built model: transformer blocks (Llama's: RMSNorm, rotary positions, SwiGLU)
    heads: int = 4  # built model: attention heads
    intermediate_size: int = 128  # built model: SwiGLU hidden width
    max_positions: int = 48  # built model: longest text in tokens (prompt and answer)

    def __post_init__(self) -> None:
        positive("model", hidden_size=self.hidden_size, layers=self.layers, heads=self.heads,
                  intermediate_size=self.intermediate_size, max_positions=self.max_positions)
        if self.from_run and self.name_or_path:
            raise ConfigError("model.from_run and model.name_or_path both name a model; set one")
        if self.hidden_size % self.heads:
            raise ConfigError(f"model.hidden_size={self.hidden_size} must be a multiple of model.heads={self.heads}")


@dataclass
class LoraSettings:
    """LoRA (Hu et al. 2021) through peft: W' = W + (alpha / rank) B A, only A and B trained."""

    enabled: bool = True  # false: full fine-tuning (every weight trains), for comparison
    rank: int = 8  # rank of A and B
    alpha: float = 16.0  # scale numerator: the update is (alpha / rank) B A
    dropout: float = 0.0  # dropout on the adapter's input
    target_modules: List[str] = field(default_factory=lambda: ["auto"])  # linear layers adapted; [auto]: peft's default for the architecture (Llama: q_proj, v_proj = Hu et al.'s W_q, W_v)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"lora.rank must be >= 1, got {self.rank} (lora.enabled=false trains every weight)")
        positive("lora", alpha=self.alpha)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TaskEnvConfig:
    """The shipped RLHF task (rlexp/lm/task.py): addition, and a labeler whose utility is known."""

    type: str = "lm_task"  # env builder: lm_task
    id: str = "arithmetic"  # the task (the only one shipped): arithmetic
    max_operand: int = 19  # operands drawn from [0, max_operand] (400 sums: a 2-layer model learns them all in a minute)
    padding_penalty: float = 0.1  # utility lost per character after the number
    near_miss_credit: float = 0.5  # utility of an answer off by one; halves per further unit
    annotator_correct: float = 0.6  # demonstrations and candidates: share right and concise
    annotator_padded: float = 0.2  # share right but padded; the rest miss by 1-3
    label_temperature: float = 0.1  # Bradley-Terry temperature of the preference labels (0: noiseless)

    def __post_init__(self) -> None:
        one_of("env", "id", self.id, ("arithmetic",))
        positive("env", max_operand=self.max_operand)
        non_negative("env", padding_penalty=self.padding_penalty, label_temperature=self.label_temperature)
        unit_interval("env", near_miss_credit=self.near_miss_credit, annotator_correct=self.annotator_correct,
                       annotator_padded=self.annotator_padded)
        if self.annotator_correct + self.annotator_padded > 1:
            raise ConfigError("env.annotator_correct + env.annotator_padded must be <= 1, got "
                              f"{self.annotator_correct + self.annotator_padded}")


@dataclass
class TextDataEnvConfig:
    """The user's own texts (rlexp/lm/data.py): local files in TRL's dataset formats, read with
    Hugging Face datasets. What a stage reads from them: pretrain a text column (or messages),
    sft prompt + completion (or messages), reward_model and dpo prompt + chosen + rejected, the
    RL stages prompt. No gold utility is known: evaluations report the held-out loss, accuracy,
    reward and KL."""

    type: str = "text_data"  # env builder: text_data
    id: str = "text_data"  # the name runs are filed under
    train_file: str = MISSING  # a .json/.jsonl/.parquet/.csv file, or a directory datasets' save_to_disk wrote; required
    eval_file: Optional[str] = None  # held-out rows in the same format; null: the last eval_fraction of train_file
    eval_fraction: float = 0.05  # share of train_file's rows held out when eval_file is null
    text_column: str = "text"  # pretrain: the texts
    prompt_column: str = "prompt"  # sft, reward_model, dpo, the RL stages: the prompts (text or messages)
    completion_column: str = "completion"  # sft: the answers to learn (text or assistant messages)
    messages_column: str = "messages"  # pretrain, sft: whole conversations instead (the last assistant turn is learned)
    chosen_column: str = "chosen"  # reward_model, dpo: the preferred answer
    rejected_column: str = "rejected"  # reward_model, dpo: the other answer

    def __post_init__(self) -> None:
        one_of("env", "type", self.type, ("text_data",))
        if not 0.0 < self.eval_fraction < 1.0:
            raise ConfigError(f"env.eval_fraction must be in (0, 1), got {self.eval_fraction}")
