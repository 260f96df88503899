"""Run speed on this machine: the zoo's `zoo run` steps and `zoo generate` loop against the usual
PyTorch stack (Hugging Face transformers' Falcon at PaLM's shape) and against the machine's read
bandwidth, all measured in one process run.

    pip install -e '.[dev,bench]'     # torch and transformers: the bench extra, never a default
    JAX_PLATFORMS=cpu python benchmarks/run_speed.py [--rounds 5] [--json FILE] [--no-peer]

The peer: `FalconForCausalLM` with `parallel_attn=True, multi_query=True`, RoPE, no biases and tied
embeddings has PaLM's block apart from a GeLU MLP; `ffn_hidden_size = 1.5·F` makes the parameter
counts equal (palm-150m: 148.4M each, checked). Both models are random: speed does not depend on
the values. Cases: decode at batch 1 and 16 with a 512-token context; prefill of a 512-token
prompt at batch 1 and 8.

Contestants:
- `zoo run`: the compiled step `zoo run` times (`layouts.compiled`), for palm-150m declared in
  fp32 and in bf16, each as this backend runs it (`zoo.execution`); the bf16 model as declared
  (bf16 products, scanned layers: what every backend ran before); int8 weights. A decode sample is
  the mean of 16 steps at the context run back to back, a prefill sample the whole prompt.
- `zoo generate`: `zoo.generate_jit` (what `zoo generate` runs on one device), greedy, on the fp32
  and the bf16 model as this backend runs them. Decode per token = (t(N2) − t(N1)) / (N2 − N1),
  two token budgets after the same prompt, so prefill cancels.
- peer, fp32 and bf16: prefill is one forward of the prompt building the cache (logits of the last
  position only, as the zoo's); a decode sample is 16 greedy steps of the forward pass
  `model.generate` runs per token, from the prompt's cache (cut back to the prompt after), per
  step. torch runs on every core.

Each round runs every contestant once, in a rotated order; figures are medians over the rounds.
No compilation happens inside a timed region: zoo steps are compiled ahead of time, each generate
budget is called once untimed first, and compile times are printed apart. Decode's roofline is
(weight bytes as held + the context's KV bytes) ÷ the machine's read bandwidth, measured every
round as the best of three reads of 1 GiB (`ReadBandwidth`); the median over the rounds is used.
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layouts.compiled.aot import compile_phase  # noqa: E402
from layouts.compiled.timing import PhaseTimer  # noqa: E402
from layouts.registry import get_partitioning  # noqa: E402
from layouts.sharding import init_in_shards  # noqa: E402
from layouts.workload import Workload  # noqa: E402
from zoo import generate_jit, get_preset  # noqa: E402
from zoo.config import ModelConfig  # noqa: E402
from zoo.execution import AS_DECLARED, Execution, execution_for  # noqa: E402

_GiB = 2**30
_KV_DTYPE = "bfloat16"
_SETTLE_S = 0.5
# Decode steps per sample, run back to back: one step alone after a pause is slower (threads and
# caches asleep), and each side's loop runs them back to back.
_DECODE_STEPS = 16


@dataclasses.dataclass(frozen=True)
class Case:
    phase: str  # "decode": one token per sequence at a context of `length`; "prefill": a prompt of `length`
    batch: int
    length: int

    @property
    def name(self) -> str:
        return f"{self.phase} b{self.batch}"

    @property
    def tokens(self) -> int:
        """Tokens one sample processes: the whole prompt batch, or one per sequence."""
        return self.batch * (self.length if self.phase == "prefill" else 1)


@dataclasses.dataclass
class Contestant:
    name: str
    dtype: str  # the weights' stored dtype, for "same dtype" ratios
    side: str  # "zoo" or "peer"
    sample: Callable[[], float]  # seconds of one step (decode) or of the prompt (prefill)
    weight_bytes: int  # as the program holds them
    kv_bytes: int  # of the context, read once per decode step
    compile_s: float | None = None
    times: list = dataclasses.field(default_factory=list)


class ReadBandwidth:
    """Bytes per second this machine reads, measured on 1 GiB of float32 three ways (a numpy sum on
    one thread, numpy sums over every core, an XLA matvec over a [16384, 16384] matrix: the read a
    decode step's matmuls make), the best of them each time."""

    def __init__(self, size: int = _GiB) -> None:
        self.size = size
        self.data = np.ones(size // 4, np.float32)
        self.threads = os.cpu_count() or 1
        self.parts = np.array_split(self.data, self.threads)
        side = int((size // 4) ** 0.5)
        self.matrix, self.vector = jax.numpy.ones((side, side), jax.numpy.float32), jax.numpy.ones((1, side), jax.numpy.float32)
        self.matvec = jax.jit(lambda vector, matrix: vector @ matrix).lower(self.vector, self.matrix).compile()
        self.measure()  # pages touched and threads started before any timing

    def measure(self) -> float:
        best = 0.0
        with ThreadPoolExecutor(self.threads) as pool:
            readers = (
                self.data.sum,  # numpy, one thread
                lambda: list(pool.map(np.sum, self.parts)),  # numpy, every core
                lambda: jax.block_until_ready(self.matvec(self.vector, self.matrix)),
            )
            for read in readers:
                started = time.perf_counter()
                read()
                best = max(best, self.size / (time.perf_counter() - started))
        return best


def kv_bytes(config: ModelConfig, batch: int, context: int, dtype: str) -> int:
    return config.kv_bytes_per_token(dtype) * batch * context


# The zoo ------------------------------------------------------------------------------------------


def zoo_step(config: ModelConfig, case: Case, weights: str, execution: Execution | None, name: str) -> Contestant:
    """`zoo run`'s compiled step on one local device (`execution` None: as the backend runs it)."""
    workload = Workload(case.batch, case.length, case.length, 1, weights, _KV_DTYPE)
    compiled = compile_phase(get_partitioning("1d-ws", "heads", config), (1, 1, 1), workload, case.phase, jax.devices()[:1], execution=execution)
    if compiled.failure is not None:
        raise SystemExit(f"{name}: compile failed: {compiled.failure}")
    timer = PhaseTimer(compiled, config, workload, case.phase, seed=0)
    timer.step()  # warm-up, untimed: the first run of a program also allocates and touches its buffers
    repeats = _DECODE_STEPS if case.phase == "decode" else 1

    def sample() -> float:
        """The mean of `repeats` steps run back to back, as `zoo run --repeats` runs them."""
        return sum(timer.step() for _ in range(repeats)) / repeats

    dtype = "int8" if weights == "int8" else config.dtype
    return Contestant(name, dtype, "zoo", sample, compiled.weight_bytes, kv_bytes(config, case.batch, case.length, _KV_DTYPE), compiled.seconds)


def zoo_generate(config: ModelConfig, case: Case, budgets: tuple[int, int]) -> Contestant:
    """`zoo generate`'s on-device loop: decode seconds per token from two token budgets."""
    execution = execution_for(jax.devices()[0].platform)
    model = init_in_shards(config, None, jax.random.key(0), "bf16", execution)
    prompt = jax.random.randint(jax.random.key(1), (case.batch, case.length), 0, config.vocab)
    started = time.perf_counter()
    for budget in budgets:  # compiled (and run once) before any timing
        jax.block_until_ready(generate_jit(model, prompt, jax.random.key(2), max_new_tokens=budget))
    compile_s = time.perf_counter() - started

    def loop_seconds(budget: int) -> float:
        started = time.perf_counter()
        jax.block_until_ready(generate_jit(model, prompt, jax.random.key(2), max_new_tokens=budget))
        return time.perf_counter() - started

    def per_token() -> float:
        return (loop_seconds(budgets[1]) - loop_seconds(budgets[0])) / (budgets[1] - budgets[0])

    held = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(model))
    return Contestant(f"zoo generate ({config.dtype})", config.dtype, "zoo", per_token, held, kv_bytes(config, case.batch, case.length, _KV_DTYPE), compile_s)


# The peer -----------------------------------------------------------------------------------------


def falcon(config: ModelConfig, dtype: str):
    """Hugging Face's Falcon at `config`'s shape, its parameter count checked against the zoo's."""
    import torch
    from transformers import FalconConfig, FalconForCausalLM

    torch.manual_seed(0)
    peer_config = FalconConfig(
        vocab_size=config.vocab, hidden_size=config.d_model, num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
        multi_query=config.n_kv_heads == 1, parallel_attn=True, bias=False, alibi=False, new_decoder_architecture=False,
        ffn_hidden_size=config.d_ff * 3 // 2, tie_word_embeddings=True, max_position_embeddings=4096, rope_theta=config.rope_base,
    )  # fmt: skip
    model = FalconForCausalLM(peer_config).eval().to(getattr(torch, dtype))
    params = sum(parameter.numel() for parameter in model.parameters())
    if abs(params - config.param_count) > 1e-3 * config.param_count:
        raise SystemExit(f"the peer has {params:,} parameters, the zoo's {config.name} {config.param_count:,}")
    return model, params


def peer(config: ModelConfig, case: Case, dtype: str, steps: int = _DECODE_STEPS) -> Contestant:
    import torch

    model, params = falcon(config, dtype)
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, config.vocab, (case.batch, case.length), generator=generator)
    itemsize = torch.finfo(getattr(torch, dtype)).bits // 8

    @torch.inference_mode()
    def prefill() -> float:
        started = time.perf_counter()
        model(prompt, use_cache=True, logits_to_keep=1)
        return time.perf_counter() - started

    with torch.inference_mode():
        state = model(prompt, use_cache=True, logits_to_keep=1)
    cache, first = state.cache, state.logits[:, -1:].argmax(-1)

    @torch.inference_mode()
    def decode_step() -> float:
        """Seconds per step of `steps` greedy steps from the prompt's cache, which is then cut back
        to the prompt: the forward pass `model.generate` runs per token, without its Python loop."""
        token = first
        started = time.perf_counter()
        for _ in range(steps):
            token = model(token, cache=cache, use_cache=True).logits[:, -1:].argmax(-1)
        seconds = (time.perf_counter() - started) / steps
        cache.crop(-steps)
        return seconds

    sample = prefill if case.phase == "prefill" else decode_step
    sample()  # warm-up, untimed
    name = f"peer: HF Falcon ({dtype}, torch {torch.__version__.split('+')[0]})"
    kv = case.batch * case.length * 2 * config.n_layers * config.n_kv_heads * config.d_head * itemsize
    return Contestant(name, dtype, "peer", sample, params * itemsize, kv)


# The run ------------------------------------------------------------------------------------------


def contestants(case: Case, with_peer: bool, budgets: tuple[int, int]) -> list[Contestant]:
    bf16 = get_preset("palm-150m")
    fp32 = dataclasses.replace(bf16, dtype="float32")
    found = [
        zoo_step(fp32, case, "bf16", None, "zoo run (fp32)"),
        zoo_step(bf16, case, "bf16", None, "zoo run (bf16)"),
        zoo_step(bf16, case, "int8", None, "zoo run (int8)"),
        zoo_step(bf16, case, "bf16", AS_DECLARED, "zoo run (bf16, as declared)"),
    ]
    if case.phase == "decode":
        found += [zoo_generate(config, case, budgets) for config in (fp32, bf16)]
    if with_peer:
        found += [peer(bf16, case, dtype) for dtype in ("float32", "bfloat16")]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--context", type=int, default=512, help="decode's context and prefill's prompt, in tokens")
    parser.add_argument("--decode-batches", default="1,16", help="comma-separated; empty for none")
    parser.add_argument("--prefill-batches", default="1,8", help="comma-separated; empty for none")
    parser.add_argument("--budgets", default="4,68", help="the two token budgets `zoo generate`'s decode per token is worked out from")
    parser.add_argument("--no-peer", action="store_true", help="without torch and transformers: the zoo and the roofline only")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    arguments = parser.parse_args()
    budgets = tuple(int(value) for value in arguments.budgets.split(","))
    if not arguments.no_peer:
        try:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
        except ImportError:
            raise SystemExit("the peer needs torch and transformers: pip install -e '.[bench]', or pass --no-peer") from None
    cases = [Case("decode", int(batch), arguments.context) for batch in arguments.decode_batches.split(",") if batch]
    cases += [Case("prefill", int(batch), arguments.context) for batch in arguments.prefill_batches.split(",") if batch]

    device = jax.devices()[0]
    print(f"{device.platform} {device.device_kind}, {os.cpu_count()} cores, jax {jax.__version__}; {arguments.rounds} rounds", flush=True)
    report = {"device": f"{device.platform} {device.device_kind}", "cores": os.cpu_count(), "jax": jax.__version__, "rounds": arguments.rounds, "cases": []}
    bandwidth = ReadBandwidth()
    for case in cases:
        field = contestants(case, not arguments.no_peer, budgets)
        bandwidths = []
        for round_number in range(arguments.rounds):
            bandwidths.append(bandwidth.measure())
            shift = round_number % len(field)
            for contestant in field[shift:] + field[:shift]:
                # torch's OpenMP threads spin for a while after its calls; a pause lets them sleep
                # before the next contestant's timed region (without it, the zoo's decode after
                # the peer's took twice as long).
                time.sleep(_SETTLE_S)
                contestant.times.append(contestant.sample())
        report["cases"].append(_summary(case, field, statistics.median(bandwidths)))
        _print(report["cases"][-1])
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=1))


def _summary(case: Case, field: list[Contestant], bandwidth: float) -> dict:
    rows = []
    for contestant in field:
        seconds = statistics.median(contestant.times)
        row = {"contestant": contestant.name, "side": contestant.side, "dtype": contestant.dtype, "seconds": seconds,
               "tokens_per_s": case.tokens / seconds, "times": contestant.times, "compile_s": contestant.compile_s}  # fmt: skip
        if case.phase == "decode":
            row["roofline_s"] = (contestant.weight_bytes + contestant.kv_bytes) / bandwidth
            row["of_roofline"] = row["roofline_s"] / seconds
        rows.append(row)
    peers = [row for row in rows if row["side"] == "peer"]
    for row in rows:
        if row["side"] == "zoo" and peers:
            best = max(peers, key=lambda peer_row: peer_row["tokens_per_s"])
            row["vs_peer_best"] = row["tokens_per_s"] / best["tokens_per_s"]
            same = [peer_row for peer_row in peers if peer_row["dtype"] == row["dtype"]]
            row["vs_peer_same_dtype"] = row["tokens_per_s"] / same[0]["tokens_per_s"] if same else None
    return {"case": case.name, "phase": case.phase, "batch": case.batch, "length": case.length, "read_bandwidth_bytes_per_s": bandwidth, "rows": rows}


def _print(summary: dict) -> None:
    print(f"\n{summary['case']}, {summary['length']} tokens; read bandwidth {summary['read_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s")
    header = f"  {'contestant':44} {'median':>10} {'tokens/s':>9} {'÷peer best':>10} {'÷peer same':>10} {'roofline':>9} {'of roofl.':>9} {'compile':>8}"
    print(header)
    for row in summary["rows"]:
        unit = "ms" if row["seconds"] < 10 else "s"
        median = f"{row['seconds'] * 1000:.1f} ms" if unit == "ms" else f"{row['seconds']:.2f} s"
        cells = [
            f"{row['tokens_per_s']:9.1f}",
            _ratio(row.get("vs_peer_best")),
            _ratio(row.get("vs_peer_same_dtype")),
            f"{row['roofline_s'] * 1000:7.1f}ms" if "roofline_s" in row else f"{'':>9}",
            f"{row['of_roofline'] * 100:8.0f}%" if "of_roofline" in row else f"{'':>9}",
            f"{row['compile_s']:7.1f}s" if row["compile_s"] is not None else f"{'':>8}",
        ]
        print(f"  {row['contestant']:44} {median:>10} " + " ".join(cells))


def _ratio(value) -> str:
    return f"{value:10.2f}" if value is not None else f"{'':>10}"


if __name__ == "__main__":
    main()
