"""One table from the zoo run JSON rows (+ the generate timing) in $OUT."""
import glob, json, os, sys
from zoo import get_preset

out = sys.argv[1]
PEAK, MEASURED_PEAK = 989e12, 790e12
rows = []
for path in sorted(glob.glob(os.path.join(out, "run_*.json"))):
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            rows.append((os.path.basename(path), json.loads(line)))
kind = next((r["details"].get("device_kind", "") for _, r in rows if r.get("details")), "")
bw = 4.8e12 if "H200" in kind else 3.35e12 if "H100" in kind else None
print(f"\ndevice_kind={kind!r}  HBM BW used for roofline: {bw}  peak bf16: {PEAK:.3g} (datasheet), {MEASURED_PEAK:.3g} (measured, KINDS.md)")
hdr = f"{'file':24} {'phase':7} {'batch':>5} {'ctx/in':>6} {'status':6} {'step ms':>9} {'ms/tok':>8} {'tok/s':>10} {'W GB':>6} {'KVread GB':>9} {'KValloc GB':>10} {'roofline ms':>11} {'meas/roof':>9} {'MFU@989':>8} {'MFU@790':>8} {'compile s':>9}"
print(hdr)
for name, r in rows:
    cfg = get_preset(r["model"])
    n = cfg.param_count
    step = r.get("step_time_s")
    mem = r.get("memory_per_chip_bytes") or {}
    w = mem.get("weights") or n * 2
    kv_alloc = mem.get("kv_cache") or 0
    kv_read = r["batch"] * r["context_len"] * cfg.kv_bytes_per_token("bfloat16") if r["phase"] == "decode" else 0
    roof = (w + kv_read) / bw * 1e3 if (bw and r["phase"] == "decode") else None
    tokens = r["batch"] * (r["input_len"] if r["phase"] == "prefill" else 1)
    mfu = 2 * n * tokens / (PEAK * step) if step else None
    mfu2 = 2 * n * tokens / (MEASURED_PEAK * step) if step else None
    f = lambda v, fmt: "-" if v is None else format(v, fmt)
    ctx = r["input_len"] if r["phase"] == "prefill" else r["context_len"]
    print(f"{name:24} {r['phase']:7} {r['batch']:>5} {ctx:>6} {r['status']:6} {f(step and step*1e3, '9.3f')} {f(step and step*1e3 if r['phase']=='decode' else None, '8.3f')} {f(r.get('tokens_per_s'), '10.4g')} "
          f"{w/1e9:6.2f} {kv_read/1e9:9.3f} {kv_alloc/1e9:10.3f} {f(roof, '11.3f')} {f(step*1e3/roof if (step and roof) else None, '9.2f')} {f(mfu, '8.1%')} {f(mfu2, '8.1%')} {f(r.get('compile_time_s'), '9.1f')}")
    if r["status"] != "ok":
        print("   error:", r.get("error"))
    else:
        d = r.get("details") or {}
        print(f"   step_times_ms={[round(t*1e3, 3) for t in d.get('step_times_s', [])]} prefill_chunk={r.get('prefill_chunk')} zoo_mfu={r.get('mfu')} zoo_hbm_util={d.get('memory_bandwidth_utilisation')} mem_total_GB={(mem.get('total') or 0)/1e9:.2f}")
g = os.path.join(out, "generate_b1.json")
if os.path.exists(g):
    r = json.load(open(g))
    cfg = get_preset(r["model"])
    kv = r["prompt_len"] * cfg.kv_bytes_per_token("bfloat16")
    roof = (cfg.param_count * 2 + kv) / bw * 1e3 if bw else None
    ms = r["decode_ms_per_token"]
    print(f"generate_jit loop (batch 1, prompt {r['prompt_len']}): decode {ms:.3f} ms/token, roofline {f(roof, '.3f')} ms, meas/roof {f(ms/roof if roof else None, '.2f')}; prefill+first token ~{r['prefill_plus_first_ms_est']:.1f} ms; runs: " + "; ".join(f"N={k}: median {v['median_s']*1e3:.1f} ms, first {v['first_call_s (compile+run)']:.1f} s" for k, v in r["runs"].items()))
