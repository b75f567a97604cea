"""Hyperparameters: one validated dataclass for the agent, one for a training run.

Field names follow Stable-Baselines3 where the concept is the same, so a config moves over unchanged.
Values arrive from Python keywords, YAML files (`configs/*.yaml`) or `--set key=value` strings; all three
go through `coerce`, so `--set buffer_size=1e6` and `buffer_size: 1000000` both give the int 1000000,
while `--set batch_size=25.5` or an unknown key is refused with one line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses

from keras_sac.config.coercion import coerce  # noqa: F401 (re-exported)
from keras_sac.config.combinations import check_combinations
from keras_sac.config.fields import (
    arch_ok,
    check,
    field,
    lr_ok,
    non_negative,
    one_of,
    positive,
    threads_ok,
    unit_open_closed,
    validate,
)
from keras_sac.config.names import _unknown_key  # noqa: F401 (re-exported: sources.py)
from keras_sac.config.run import RunConfig  # noqa: F401 (re-exported)
from keras_sac.config.values import ConfigError, check_pixels, check_schedule  # noqa: F401 (re-exported)

PRECISIONS = ("float32", "mixed_bfloat16")
TARGET_BACKUPS = ("min", "mean", "redq")
ACTOR_GRADIENTS = ("reparametrize", "reinforce")
TARGET_UPDATES = ("polyak", "hard", "none")
VECTORIZATIONS = ("sync", "async")
ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu")
INITS = ("default", "orthogonal")
ENCODERS = ("nature_cnn", "small")
IMAGE_AUGMENTATIONS = ("none", "random_shift")
IMAGE_CHANNELS = ("auto", "first", "last")
REPLAY_BUFFERS = ("uniform", "her")
GOAL_STRATEGIES = ("future", "final", "episode")
COMPILE_MODES = ("auto", "graph", "xla")
ARCHITECTURES = ("mlp", "simba")
CRITIC_TYPES = ("scalar", "quantile")


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (Haarnoja et al. 2018, arXiv 1812.05905); defaults are Stable-Baselines3's."""

    learning_rate: float = field(
        3e-4,
        "Adam step size for actor, critics and log-alpha (each can differ: actor_learning_rate, ...).",
        check(positive, "a number > 0"),
    )
    actor_learning_rate: float | dict | None = field(
        None,
        "The actor's Adam step size: a number, a schedule mapping such as {schedule: linear, end: 1.0e-5, "
        "steps: 100000} (keras_sac/schedules.py), or None for learning_rate.",
        check(lr_ok, "a number > 0"),
    )
    critic_learning_rate: float | dict | None = field(
        None, "The critics' Adam step size, as actor_learning_rate.", check(lr_ok, "a number > 0")
    )
    alpha_learning_rate: float | dict | None = field(
        None, "The temperature's Adam step size, as actor_learning_rate.", check(lr_ok, "a number > 0")
    )
    adam_beta1: float = field(
        0.9,
        "Adam's first-moment decay for all three optimizers (CrossQ uses 0.5).",
        check(lambda b: 0 <= b < 1, "a number in [0, 1)"),
    )
    weight_decay: float = field(
        0.0,
        "Decoupled weight decay of the actor's and critics' optimizers (AdamW, "
        "Loshchilov & Hutter 2019; SimBa and BRO use 1e-2); 0: plain Adam.",
        check(non_negative, "a number >= 0"),
    )
    max_grad_norm: float | None = field(
        None,
        "Clip the critics' gradients, and the actor's, to this global L2 norm before their optimizer steps "
        "(each network's own norm; the temperature's is not clipped). None: no clipping, as SB3's SAC.",
        check(positive, "a number > 0 (or null: no clipping)"),
    )
    reset_interval: int | None = field(
        None,
        "Gradient steps between resets of the actor and critics (Nikishin et al. 2022; BRO, SR-SAC): fresh "
        "weights, targets and optimizer states, while the replay buffer, the temperature and the observation "
        "statistics are kept; a multiple of gradient_steps. None: never.",
        check(positive, "an integer >= 1 (or null: never)"),
    )
    buffer_size: int = field(
        1_000_000,
        "Replay buffer capacity in rows, one transition each (with "
        "optimize_memory_usage, plus one row per episode end); a ring: the "
        "oldest is overwritten.",
        check(positive, "an integer >= 1"),
    )
    learning_starts: int = field(
        100,
        "Env steps of uniform random actions before the first gradient step.",
        check(non_negative, "an integer >= 0"),
    )
    batch_size: int = field(256, "Transitions per minibatch.", check(positive, "an integer >= 1"))
    tau: float = field(
        0.005,
        "Polyak coefficient: target <- tau * online + (1 - tau) * target.",
        check(unit_open_closed, "a number in (0, 1]"),
    )
    gamma: float = field(0.99, "Discount factor.", check(unit_open_closed, "a number in (0, 1]"))
    n_envs: int = field(
        1,
        "Envs stepped together (a gymnasium.vector env); each vector step stores one transition per env.",
        check(positive, "an integer >= 1"),
    )
    vectorization: str = field(
        "sync",
        "With n_envs > 1: 'sync' (all in this process) or 'async' (one subprocess each, stepped in parallel).",
        one_of(VECTORIZATIONS),
    )
    train_freq: int = field(
        1, "Vector steps (of n_envs env steps each) between training phases.", check(positive, "an integer >= 1")
    )
    gradient_steps: int = field(
        1,
        "Gradient steps per training phase (the update-to-data ratio is gradient_steps / (train_freq * n_envs)).",
        check(positive, "an integer >= 1"),
    )
    target_update: str = field(
        "polyak",
        "How target critics follow the online ones: 'polyak' (tau every target_update_interval steps), "
        "'hard' (a copy every target_update_period steps) or 'none' (no target critics: the TD target "
        "uses the online critics, as CrossQ does).",
        one_of(TARGET_UPDATES),
    )
    target_update_interval: int = field(
        1, "Gradient steps between Polyak updates of the target critics.", check(positive, "an integer >= 1")
    )
    target_update_period: int = field(
        1000, "Gradient steps between hard copies (target_update: hard).", check(positive, "an integer >= 1")
    )
    policy_delay: int = field(
        1,
        "Critic updates per actor and temperature update (TD3's delay; CrossQ uses 3).",
        check(positive, "an integer >= 1"),
    )
    n_steps: int = field(
        1,
        "n-step returns: sum of n discounted rewards, then gamma^n times the soft value; "
        "cut at termination, bootstrapping through truncation.",
        check(positive, "an integer >= 1"),
    )
    target_entropy: float | None = field(
        None, "Entropy the temperature aims for; None means -|A| (the paper's heuristic, SB3's 'auto')."
    )
    init_alpha: float = field(
        1.0, "Initial temperature alpha (SB3's ent_coef 'auto_<x>' start value).", check(positive, "a number > 0")
    )
    learn_alpha: bool = field(True, "Learn alpha by gradient descent on log-alpha; False keeps init_alpha fixed.")
    net_arch: tuple[int, ...] = field(
        (256, 256),
        "Hidden layer widths of the actor and each critic, unless actor_arch or critic_arch says otherwise.",
        check(arch_ok, "a non-empty list of positive integers, e.g. [256, 256]"),
    )
    actor_arch: tuple[int, ...] | None = field(
        None, "The actor's hidden widths; None: net_arch.", check(arch_ok, "a non-empty list of positive integers")
    )
    critic_arch: tuple[int, ...] | None = field(
        None, "Each critic's hidden widths; None: net_arch.", check(arch_ok, "a non-empty list of positive integers")
    )
    architecture: str = field(
        "mlp",
        "Network torsos: 'mlp' (a plain stack of net_arch widths) or 'simba' (Lee et al. 2024: a linear "
        "embedding, residual blocks x + MLP(LayerNorm(x)) with a 4x inverted bottleneck, a final LayerNorm; "
        "an arch such as critic_arch: [512, 512] means two blocks of width 512). SimBa's observation "
        "normalisation is normalize_observations: set it too.",
        one_of(ARCHITECTURES),
    )
    activation: str = field("relu", "Hidden-layer activation ('gelu' is its tanh approximation).", one_of(ACTIVATIONS))
    init: str = field(
        "default",
        "Weight init: 'default' (Keras' Glorot uniform) or 'orthogonal' (gain sqrt(2) on "
        "hidden layers, 0.01 on the actor's heads, 1 on the critics' output; zero biases).",
        one_of(INITS),
    )
    critic_layer_norm: bool = field(False, "LayerNorm after each hidden Dense of the critics (DroQ).")
    critic_dropout: float = field(
        0.0,
        "Dropout rate after each hidden Dense of the critics, active in every "
        "update, targets included (DroQ, Hiraoka et al. 2022).",
        check(lambda p: 0 <= p < 1, "a number in [0, 1)"),
    )
    critic_batch_renorm: bool = field(
        False,
        "Batch renormalisation in the critics, which then score (s, a) and "
        "(s', a') as one joint batch (CrossQ, Bhatt et al. 2024).",
    )
    actor_batch_renorm: bool = field(False, "Batch renormalisation in the actor (CrossQ).")
    batch_renorm_momentum: float = field(
        0.99, "Momentum of the batch-renorm running statistics.", check(lambda m: 0 <= m < 1, "a number in [0, 1)")
    )
    batch_renorm_warmup: int = field(
        100_000,
        "Updates of each batch-renorm layer that normalise with the batch's "
        "own statistics (plain batch norm) before renorm's correction starts.",
        check(non_negative, "an integer >= 0"),
    )
    batch_renorm_after_activation: bool = field(
        False,
        "Batch renorm after each hidden layer's activation (Dense -> act -> renorm, so the head reads normalised "
        "features), as CrossQ's own code and SBX's place it; false: before it (Dense -> renorm -> act).",
    )
    n_critics: int = field(2, "Number of Q networks in the ensemble.", check(lambda n: n >= 1, "an integer >= 1"))
    target_backup: str = field(
        "min",
        "How the TD target combines the target critics: 'min' (clipped double Q), 'mean', or 'redq' (min over "
        "a random subset of redq_subset critics, drawn per update; the actor then maximises the ensemble "
        "mean, as REDQ does).",
        one_of(TARGET_BACKUPS),
    )
    redq_subset: int = field(
        2, "Critics in REDQ's random subset (target_backup: redq).", check(positive, "an integer >= 1")
    )
    entropy_backup: bool = field(
        True,
        "Keep -alpha * log pi(a'|s') in the TD target; False drops it (the "
        "'deterministic backup' of SAC-v2 ablations, SBX's DroQ option).",
    )
    critic_type: str = field(
        "scalar",
        "'scalar' critics (one Q value each) or 'quantile': TQC (Kuznetsov et al. 2020), each critic "
        "outputs n_quantiles quantiles of the return, the TD target is the pooled target quantiles "
        "without the top top_quantiles_to_drop_per_net * n_critics, the loss the quantile Huber loss and "
        "the actor maximises the mean of all quantiles.",
        one_of(CRITIC_TYPES),
    )
    n_quantiles: int = field(25, "Quantiles per critic (critic_type: quantile).", check(positive, "an integer >= 1"))
    top_quantiles_to_drop_per_net: int = field(
        2,
        "Largest target quantiles dropped per critic (critic_type: quantile): the overestimation control.",
        check(non_negative, "an integer >= 0"),
    )
    actor_gradient: str = field(
        "reparametrize",
        "The actor's gradient estimator: 'reparametrize' (through the critic) or 'reinforce' "
        "(score function with a leave-one-out baseline over num_actor_samples actions).",
        one_of(ACTOR_GRADIENTS),
    )
    num_actor_samples: int = field(
        1, "Actions drawn per state for the actor's loss (reinforce needs >= 2).", check(positive, "an integer >= 1")
    )
    log_std_bounds: tuple[float, ...] = field(
        (-5.0, 2.0),
        "Range of the policy's pre-tanh log-std, reached smoothly through tanh. The floor (std >= e^-5) keeps "
        "log-probs from growing without bound as the policy sharpens, which would drive alpha's loss; the "
        "ceiling (std <= e^2) is already wide enough that tanh piles the samples at +-1.",
        check(lambda t: len(t) == 2 and t[0] < t[1], "two numbers [low, high] with low < high"),
    )
    use_sde: bool = field(
        False,
        "Generalized state-dependent exploration (gSDE, Raffin et al. 2021): in the env, "
        "the action noise is features(s) @ W with W resampled every sde_sample_freq "
        "steps and at every episode start, so exploration is smooth in time.",
    )
    sde_sample_freq: int = field(
        -1,
        "Env steps between gSDE noise resamples; -1: only at episode starts.",
        check(lambda k: k == -1 or k >= 1, "-1 or an integer >= 1"),
    )
    log_std_init: float = field(-3.0, "Initial log-std of gSDE's noise weights (SB3's SAC default).")
    precision: str = field(
        "float32",
        "Network arithmetic. 'mixed_bfloat16' runs the matmuls in bfloat16 (weights, Adam state, losses and "
        "actions stay float32): faster on CPUs with bf16 instructions (AVX512_BF16, AMX); see "
        "docs/benchmarks.md for its speed and learning parity before using it.",
        check(lambda p: p in PRECISIONS, "'float32' or 'mixed_bfloat16'"),
    )
    compile_mode: str = field(
        "auto",
        "How the training update is compiled: 'graph' (tf.function; TensorFlow's executor runs independent "
        "ops, such as the critics' matmuls, concurrently), 'xla' (jit_compile=True: XLA fuses the whole "
        "training phase, fewer and larger kernels) or 'auto': xla when gradient_steps > 1, the critics use "
        "dropout or batch renorm (DroQ, CrossQ) or output quantiles (TQC), graph for plain SAC at one gradient "
        "step, where XLA was slower (docs/benchmarks.md). Under xla, dropout masks come from XLA's ThreeFry "
        "generator instead of Philox (the same distribution, other draws).",
        one_of(COMPILE_MODES),
    )
    threads: str = field(
        "auto",
        "TensorFlow's thread pools, set by the first agent of a process (core/threads.py): 'auto' (a graph-mode "
        "update gets one thread per op and the executor every core, so the critics run side by side; XLA keeps "
        "TensorFlow's layout), 'tensorflow' (TensorFlow's default: every core in both pools) or 'INTRA,INTER' "
        "such as '1,2'. TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, when set, win.",
        check(threads_ok, "'auto', 'tensorflow' or two positive integers 'INTRA,INTER' such as '1,2'"),
    )
    optimize_memory_usage: bool = field(
        False,
        "Store each observation once in the replay buffer (a transition's next_obs is the next row's obs), "
        "about 40% fewer bytes per HalfCheetah transition; episode ends cost one extra row each.",
    )
    pixels: dict | None = field(
        None,
        "Observe the env through its rendered frames only: a mapping {size: [64, 64], grayscale: true, "
        "frame_stack: 3} (each key optional, these are the defaults) applied with Gymnasium's "
        "AddRenderObservation, ResizeObservation, GrayscaleObservation and FrameStackObservation; the env is "
        "made with render_mode='rgb_array'. None: the env's own observations.",
    )
    image_channels: str = field(
        "auto",
        "Where a rank-3 uint8 image keeps its channels: 'auto' (the smaller end "
        "axis, refused when ambiguous), 'first' (C, H, W) or 'last' (H, W, C).",
        one_of(IMAGE_CHANNELS),
    )
    encoder: str = field(
        "nature_cnn",
        "CNN for image observations: 'nature_cnn' (Mnih et al. 2015, SB3's "
        "NatureCNN: 8x8/4, 4x4/2, 3x3/1 convolutions, a 512-unit ReLU layer; for "
        "84x84 and up) or 'small' (4x4/2, 4x4/2, 3x3/1 convolutions, a 50-unit "
        "LayerNorm + tanh layer as in SAC-AE/DrQ: fewer weights, more spatial "
        "detail kept at 64x64).",
        one_of(ENCODERS),
    )
    encoder_channels: tuple[int, ...] | None = field(
        None,
        "Filters of the encoder's three convolutions; None: [32, 64, 64] (nature_cnn), [16, 32, 32] (small).",
        check(lambda t: len(t) == 3 and all(w > 0 for w in t), "three positive integers, e.g. [32, 64, 64]"),
    )
    encoder_features: int | None = field(
        None,
        "Width of the encoder's output layer; None: 512 (nature_cnn), 50 (small).",
        check(positive, "an integer >= 1"),
    )
    vector_encoder_arch: tuple[int, ...] = field(
        (64,),
        "Dict observations: hidden widths of the MLP encoding each vector key ([] passes it through as is).",
        check(lambda t: all(w > 0 for w in t), "a list of positive integers, e.g. [64] or []"),
    )
    share_encoder: bool = field(
        True,
        "Images: one encoder, trained by the critic loss only, whose features the actor reads with their "
        "gradient stopped (SAC-AE/DrQ); false: the actor has its own encoder, trained by the actor loss.",
    )
    image_augmentation: str = field(
        "none",
        "'random_shift' (DrQ, Kostrikov et al. 2020): each image in obs and next_obs of a minibatch is "
        "padded by augmentation_pad pixels (edge copies) and cropped back at a random offset.",
        one_of(IMAGE_AUGMENTATIONS),
    )
    augmentation_pad: int = field(4, "Pixels of padding for random_shift.", check(positive, "an integer >= 1"))
    replay_buffer: str = field(
        "uniform",
        "'uniform' replay, or 'her': hindsight experience replay for goal-conditioned Dict envs "
        "(observation, achieved_goal, desired_goal and the env's compute_reward), relabelling goals when "
        "minibatches are sampled (keras_sac/her.py).",
        one_of(REPLAY_BUFFERS),
    )
    n_sampled_goal: int = field(
        4,
        "HER: relabelled transitions per real one (a share k / (k + 1) of each minibatch).",
        check(positive, "an integer >= 1"),
    )
    goal_selection_strategy: str = field(
        "future",
        "HER: where substitute goals come from: 'future' (this or a later step of the episode), 'final' "
        "(its last step) or 'episode' (any of its steps).",
        one_of(GOAL_STRATEGIES),
    )
    normalize_observations: bool = field(
        False,
        "Normalise vector observations by a running mean and variance of the observations training collects "
        "(frozen in evaluation, saved in checkpoints, baked into every export: deployed policies take raw "
        "observations); see keras_sac/normalization.py.",
    )
    normalize_clip: float = field(
        10.0, "normalize_observations: clip normalised values to [-clip, clip].", check(positive, "a number > 0")
    )
    normalize_epsilon: float = field(
        1e-8, "normalize_observations: added to the variance before its square root.", check(positive, "a number > 0")
    )
    seed: int | None = field(None, "Seed for network init, action sampling, replay sampling and the env.")

    def __post_init__(self):
        validate(self)
        check_combinations(self)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) is larger than buffer_size ({self.buffer_size}); "
                f"lower batch_size or raise buffer_size"
            )

    @property
    def use_xla(self) -> bool:
        """Whether the training update is compiled by XLA (compile_mode, with 'auto' resolved)."""
        heavier = (
            self.gradient_steps > 1
            or self.critic_dropout > 0
            or self.critic_batch_renorm
            or self.critic_type == "quantile"
        )
        return self.compile_mode == "xla" or (self.compile_mode == "auto" and heavier)


def draw_seed() -> int:
    """A fresh non-negative 31-bit seed from the OS entropy pool."""
    import numpy as np

    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def make_sac_config(**values) -> SACConfig:
    """`SACConfig(**values)`, with an unknown key answered by a close-name suggestion."""
    known = [f.name for f in dataclasses.fields(SACConfig)]
    for key in values:
        if key not in known:
            raise _unknown_key(key, known)
    return SACConfig(**values)


def to_dict(config) -> dict:
    """A config as plain YAML/JSON-friendly values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
