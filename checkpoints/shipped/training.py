"""Training the shipped byte-level model on the standard library's source (checkpoints/shipped/corpus.py).

AdamW with a linear warm-up and a cosine decay, a fixed seed and a fixed step count, so the same
machine reproduces the same weights. Parameters and arithmetic are fp32 while training (the CPU has
no fast bf16 matmul); the shipped checkpoint stores them in the preset's bf16.
"""

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from checkpoints.shipped.corpus import corpus_bytes, held_out_windows
from checkpoints.shipped.evaluate import bits_per_byte, next_byte_loss
from zoo import Transformer, get_preset


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    preset: str = "palm-4m"
    seed: int = 0
    steps: int = 360
    batch: int = 16
    sequence_length: int = 256
    peak_learning_rate: float = 3e-3
    warmup_steps: int = 30
    final_learning_rate_fraction: float = 0.1
    weight_decay: float = 0.1
    gradient_clip: float = 1.0


def _decays(model: Transformer):
    # Norm scales are left out of weight decay: pulling them to 0 would only fight the normalisation.
    parameters = eqx.filter(model, eqx.is_array)
    return jax.tree_util.tree_map_with_path(lambda path, _: "norm" not in jax.tree_util.keystr(path), parameters)


def optimizer(recipe: TrainingRecipe, model: Transformer) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=recipe.peak_learning_rate,
        warmup_steps=recipe.warmup_steps,
        decay_steps=recipe.steps,
        end_value=recipe.peak_learning_rate * recipe.final_learning_rate_fraction,
    )
    return optax.chain(
        optax.clip_by_global_norm(recipe.gradient_clip),
        optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=recipe.weight_decay, mask=_decays(model)),
    )


def train(recipe: TrainingRecipe = TrainingRecipe(), log=print) -> Transformer:
    """The trained fp32 model; `log` receives one line per progress report."""
    config = get_preset(recipe.preset).replace(dtype="float32")
    model = Transformer(config, key=jax.random.key(recipe.seed))
    text = corpus_bytes("train")
    held_out = held_out_windows()
    tx = optimizer(recipe, model)
    state = tx.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit(donate="all-except-first")
    def step(batch, model, state):
        loss, grads = eqx.filter_value_and_grad(next_byte_loss)(model, batch)
        updates, state = tx.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, loss

    rng = np.random.default_rng(recipe.seed)
    span = recipe.sequence_length + 1
    started = time.perf_counter()
    for index in range(recipe.steps):
        starts = rng.integers(0, len(text) - span, size=recipe.batch)
        batch = jnp.asarray(np.stack([text[start : start + span] for start in starts]).astype(np.int32))
        model, state, loss = step(batch, model, state)
        if index % 50 == 0 or index == recipe.steps - 1:
            message = f"step {index:5d}  train loss {float(loss):.3f} nats  {time.perf_counter() - started:7.1f} s"
            if index % 100 == 0 or index == recipe.steps - 1:
                message += f"  held-out {bits_per_byte(model, held_out):.3f} bits/byte"
            log(message)
    return model
