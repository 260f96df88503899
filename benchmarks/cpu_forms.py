"""The measurements behind the CPU's program (`zoo/execution.py`, `zoo/matmul_form.py`,
`zoo.attention.attend`, `zoo.generation`): each form against the one it replaced, alternated in one
process, medians of --rounds.

    JAX_PLATFORMS=cpu .venv/bin/python benchmarks/cpu_forms.py [--rounds 7]
"""

import argparse
import dataclasses
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo import Transformer, build_abstract, decode_step, generate, get_preset, init_cache  # noqa: E402
from zoo.attention import attend  # noqa: E402
from zoo.execution import AS_DECLARED, executed, executed_abstract, execution_for  # noqa: E402
from zoo.kv_cache import KVCache  # noqa: E402
from zoo.quantization import quantize  # noqa: E402


def timed(groups: dict[str, tuple], rounds: int) -> dict[str, float]:
    """Median seconds of each compiled (function, arguments), alternated round by round."""
    for function, arguments in groups.values():
        jax.block_until_ready(function(*arguments))
    times = {name: [] for name in groups}
    for _ in range(rounds):
        for name, (function, arguments) in groups.items():
            started = time.perf_counter()
            jax.block_until_ready(function(*arguments))
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, medians: dict[str, float]) -> None:
    print(title)
    for name, seconds in medians.items():
        print(f"  {name:48} {seconds * 1000:8.2f} ms")


def compiled(function, *arguments):
    return jax.jit(function).lower(*arguments).compile(), arguments


def layer_loops(rounds: int) -> None:
    layers, rows, hidden = 10, 1024, 8192
    key_in, key_out = jax.random.split(jax.random.key(0))
    stack_in = jax.random.normal(key_in, (layers, rows, hidden), jnp.float32)
    stack_out = jax.random.normal(key_out, (layers, hidden, rows), jnp.float32)
    x = jnp.ones((1, rows), jnp.float32)

    def scanned(x, stack_in, stack_out):
        return jax.lax.scan(lambda x, w: (jnp.tanh(x @ w[0]) @ w[1], None), x, (stack_in, stack_out))[0]

    def unrolled(x, ins, outs):
        for w_in, w_out in zip(ins, outs):
            x = jnp.tanh(x @ w_in) @ w_out
        return x

    ins, outs = [stack_in[i] for i in range(layers)], [stack_out[i] for i in range(layers)]
    report(f"{layers} layers of [{rows}, {hidden}] and [{hidden}, {rows}] f32 matvecs", timed({
        "scanned over the stacks": compiled(scanned, x, stack_in, stack_out),
        "unrolled over separate arrays": compiled(unrolled, x, ins, outs),
    }, rounds))  # fmt: skip


def matmul_products(rounds: int) -> None:
    a = jnp.ones((4096, 1024), jnp.bfloat16)
    b = jnp.ones((1024, 8192), jnp.bfloat16)
    report("[4096, 1024] x [1024, 8192]", timed({
        "bf16, bf16 product": compiled(lambda a, b: a @ b, a, b),
        "bf16, float32 product cast to bf16": compiled(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32).astype(jnp.bfloat16), a, b),
        "float32": compiled(lambda a, b: a @ b, a.astype(jnp.float32), b.astype(jnp.float32)),
    }, rounds))  # fmt: skip
    one = jnp.ones((1, 1024), jnp.bfloat16)
    two = jnp.ones((2, 1024), jnp.bfloat16)
    product = partial(jnp.dot, preferred_element_type=jnp.float32)
    report("one row x [1024, 8192]", timed({
        "bf16, one row": compiled(product, one, b),
        "bf16, two rows": compiled(product, two, b),
        "float32, one row": compiled(product, one.astype(jnp.float32), b.astype(jnp.float32)),
    }, rounds))  # fmt: skip


def attention_orders(rounds: int) -> None:
    config = get_preset("palm-150m")
    batch, length = 8, 512
    q = jnp.ones((batch, length, config.n_heads, config.d_head), jnp.bfloat16)
    kv = jnp.ones((batch, length, config.n_kv_heads, config.d_head), jnp.bfloat16)
    positions = jnp.arange(length, dtype=jnp.int32)[None]
    report(f"palm-150m attention, prefill of {batch} x {length}", timed({
        "heads-major scores": compiled(lambda q, k, v: attend(q, k, v, positions, config), q, kv, kv),
        "query-major scores": compiled(lambda q, k, v: attend(q, k, v, positions, config, True), q, kv, kv),
    }, rounds))  # fmt: skip


def int8_layers(rounds: int) -> None:
    config = get_preset("palm-150m")
    model = quantize(Transformer(config, key=jax.random.key(0)))
    cpu = execution_for("cpu", "int8")
    groups, temporaries = {}, {}
    for name, unrolled in (("scanned", False), ("unrolled", True)):
        each = executed(model, dataclasses.replace(cpu, unrolled_layers=unrolled))
        cache = init_cache(config, 1, 520)
        cache = KVCache(cache.k, cache.v, jnp.int32(512))
        program = jax.jit(decode_step).lower(each, jnp.zeros((1,), jnp.int32), cache).compile()
        temporaries[name] = program.memory_analysis().temp_size_in_bytes
        groups[f"{name} ({temporaries[name] / 2**20:.0f} MiB of temporaries)"] = (program, (each, jnp.zeros((1,), jnp.int32), cache))
    report("palm-150m int8 decode step, batch 1, context 512", timed(groups, rounds))


def generate_temporaries() -> None:
    config = get_preset("palm-150m")
    prompt = jax.ShapeDtypeStruct((1, 512), jnp.int32)
    print("palm-150m generate, prompt 512, 32 new tokens: XLA's temporaries")
    for name, execution in (("as declared", AS_DECLARED), ("as the CPU runs it", execution_for("cpu"))):
        model = executed_abstract(build_abstract(config), execution)
        program = jax.jit(partial(generate, max_new_tokens=32)).lower(model, prompt, jax.random.key(0)).compile()
        print(f"  {name:48} {program.memory_analysis().temp_size_in_bytes / 1e6:8.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}; medians of {rounds} alternated rounds")
    layer_loops(rounds)
    matmul_products(rounds)
    attention_orders(rounds)
    int8_layers(rounds)
    generate_temporaries()


if __name__ == "__main__":
    main()
