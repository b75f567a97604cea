"""Gradient updates per second of SBX's SAC, DroQ-style SAC, CrossQ, TQC and SimBa SAC at a given update-to-data ratio.

Run in a virtualenv with SBX installed (see benchmarks/peer_speed.py for its set-up), not the project's:
    python benchmarks/peer_utd.py sac 20      # variant, gradient steps per training call

Fills the replay buffer with 1,010 HalfCheetah-v5 steps, then times `model.train(gradient_steps=k,
batch_size=256)` — replay sampling plus k jitted updates, the call SBX makes after each env step — and
prints one JSON line. `benchmarks/throughput.py --utd` drives this next to keras_sac's same call.
"""

import json
import sys
import time

import gymnasium as gym

VARIANTS = {  # the same networks and settings as throughput.py's keras_sac side: (algorithm, policy, kwargs)
    "sac": ("SAC", "MlpPolicy", {}),
    "droq": ("SAC", "MlpPolicy", {"policy_kwargs": {"dropout_rate": 0.01, "layer_norm": True}}),
    # the actor once per training call (policy_delay = gradient steps, set in main), as SBX's DroQ example runs it
    "droq-delayed": ("SAC", "MlpPolicy", {"policy_kwargs": {"dropout_rate": 0.01, "layer_norm": True}}),
    "crossq": ("CrossQ", "MlpPolicy", {"policy_kwargs": {"net_arch": {"pi": [256, 256], "qf": [512, 512]}}}),
    "tqc": (
        "TQC",
        "MlpPolicy",
        {"top_quantiles_to_drop_per_net": 2, "policy_kwargs": {"n_quantiles": 25, "n_critics": 2}},
    ),
    # SBX's SimBa SAC (residual blocks with the 4x inverted bottleneck, optax's AdamW) at the widths of
    # benchmarks/screening/simba.yaml: the actor one block of 128, the critics two blocks of 128, decay 0.01
    "simba": (
        "SAC",
        "SimbaPolicy",
        {"policy_kwargs": {"net_arch": {"pi": [128], "qf": [128, 128]}, "optimizer_kwargs": {"weight_decay": 0.01}}},
    ),
}


def main() -> None:
    variant, k = sys.argv[1], int(sys.argv[2])
    import sbx

    algo, policy, kwargs = VARIANTS[variant]
    if variant == "droq-delayed":
        kwargs = {**kwargs, "policy_delay": k}
    model = getattr(sbx, algo)(
        policy,
        gym.make("HalfCheetah-v5"),
        learning_starts=1000,
        batch_size=256,
        gradient_steps=k,
        seed=0,
        verbose=0,
        **kwargs,
    )
    model.learn(1010)  # fills the buffer, compiles the k-step update and runs it 10 times
    calls = max(10, 200 // k)
    for _ in range(3):
        model.train(gradient_steps=k, batch_size=256)
    start = time.perf_counter()
    for _ in range(calls):
        model.train(gradient_steps=k, batch_size=256)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"lib": "sbx", "variant": variant, "gradient_steps": k, "updates_per_s": round(calls * k / seconds, 1)}
        )
    )


if __name__ == "__main__":
    main()
