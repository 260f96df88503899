"""Times the on-device generation loop `zoo generate` uses on one chip (zoo.generate_jit, the
while_loop over decode steps) for a random --model preset: two token budgets, each compiled and run
once untimed, then timed REP times; decode ms/token = (t(N2) - t(N1)) / (N2 - N1), prefill cancels."""
import json, sys, time
import jax, jax.numpy as jnp
from zoo import Transformer, generate_jit, get_preset
from zoo.sampling import GREEDY
from zoo.tokenizer import encode_batch

model_name, ctx, n1, n2, rep, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
config = get_preset(model_name)
t0 = time.perf_counter()
network = Transformer(config, key=jax.random.key(0))
jax.block_until_ready(network)
init_s = time.perf_counter() - t0
text = ("def main(argv):\n    return 0\n" * (ctx // 29 + 1))[:ctx]
tokens = jnp.asarray(encode_batch([text]))
assert tokens.shape == (1, ctx), tokens.shape
result = {"model": model_name, "batch": 1, "prompt_len": ctx, "init_s": init_s, "device_kind": jax.devices()[0].device_kind, "runs": {}}
for n in (n1, n2):
    t0 = time.perf_counter()
    jax.block_until_ready(generate_jit(network, tokens, jax.random.key(1), max_new_tokens=n, sampling=GREEDY))
    first = time.perf_counter() - t0
    times = []
    for _ in range(rep):
        t0 = time.perf_counter()
        g = generate_jit(network, tokens, jax.random.key(1), max_new_tokens=n, sampling=GREEDY)
        jax.block_until_ready(g)
        times.append(time.perf_counter() - t0)
    assert int(g.lengths[0]) == n, (int(g.lengths[0]), n)
    result["runs"][str(n)] = {"first_call_s (compile+run)": first, "times_s": times, "median_s": sorted(times)[len(times) // 2]}
    print(f"generate_jit max_new_tokens={n}: first call {first:.2f} s, median {result['runs'][str(n)]['median_s']*1e3:.2f} ms", flush=True)
m1, m2 = result["runs"][str(n1)]["median_s"], result["runs"][str(n2)]["median_s"]
result["decode_ms_per_token"] = (m2 - m1) / (n2 - n1) * 1e3
result["prefill_plus_first_ms_est"] = (m1 - (n1 - 1) * (m2 - m1) / (n2 - n1)) * 1e3
print(json.dumps(result))
with open(out, "w") as f:
    json.dump(result, f, indent=1)
