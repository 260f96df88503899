#!/usr/bin/env bash
# palm-8b decode/prefill timings with the zoo CLI on the one local device. Sizes are variables so a
# CPU rehearsal with a tiny model runs the very same commands:
#   MODEL=palm-tiny CTX=64 DB1=1 DB2=4 PB=2 GEN=8 GN1=4 GN2=12 OUT=/tmp/x PY=../.venv/bin/python bash benchmarks/gpu/palm8b_timings.sh
set -u
MODEL=${MODEL:-palm-8b}; CTX=${CTX:-2048}; DB1=${DB1:-1}; DB2=${DB2:-64}; PB=${PB:-8}; GEN=${GEN:-64}
DREP=${DREP:-20}; PREP=${PREP:-5}; GN1=${GN1:-32}; GN2=${GN2:-160}; GREP=${GREP:-3}
PY=${PY:-python3}; OUT=${OUT:?set OUT}; STEP_TIMEOUT=${STEP_TIMEOUT:-150}; DEADLINE=${DEADLINE:-440}
START_S=$(date +%s)
budget() {  # seconds a step may take: STEP_TIMEOUT, capped so the summary runs before DEADLINE
  local left=$(( DEADLINE - ($(date +%s) - START_S) - 15 )); (( left < STEP_TIMEOUT )) && echo $left || echo $STEP_TIMEOUT; }
export PYTHONPATH=$PWD
mkdir -p "$OUT"
ERR="$OUT/stderr.txt"; : > "$ERR"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
echo "== env $(date -u +%FT%TZ) MODEL=$MODEL CTX=$CTX DB1=$DB1 DB2=$DB2 PB=$PB GEN=$GEN"
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1
nvidia-smi --query-gpu=driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv 2>&1
"$PY" -c 'import sys, jax, jaxlib, equinox, jaxtyping, click; print("python", sys.version.split()[0], "jax", jax.__version__, "jaxlib", jaxlib.__version__, "equinox", equinox.__version__, "jaxtyping", jaxtyping.__version__, "click", click.__version__); print("devices", jax.devices(), [d.device_kind for d in jax.devices()])' 2>&1
COMMON="--model $MODEL --target local --chips 1 --weights bf16 --format json"
step() {  # name, then zoo args
  local name=$1; shift
  echo "== $name: zoo $*"
  echo "== $name: zoo $*" >> "$ERR"
  local t0=$(now_ms) limit=$(budget)
  if (( limit < 30 )); then echo "   SKIPPED: only ${limit}s left before the deadline"; return; fi
  timeout "$limit" "$PY" -c 'from cli.main import main; main(prog_name="zoo")' "$@" > "$OUT/$name.json" 2>> "$ERR"
  local rc=$?
  echo "   rc=$rc wall=$(( $(now_ms) - t0 )) ms"
}
step run_decode_b$DB1 run $COMMON --phase decode --batch $DB1 --input-len $CTX --context-len $CTX --gen-tokens $GEN --repeats $DREP --warmup 3
step run_decode_b$DB2 run $COMMON --phase decode --batch $DB2 --input-len $CTX --context-len $CTX --gen-tokens $GEN --repeats $DREP --warmup 3
step run_prefill_b$PB run $COMMON --phase prefill --batch $PB --input-len $CTX --gen-tokens 1 --repeats $PREP --warmup 1
echo "== generate_jit loop (zoo generate's on-device loop), batch 1, prompt $CTX, budgets $GN1 / $GN2"
echo "== generate" >> "$ERR"
t0=$(now_ms); limit=$(budget)
(( limit < 30 )) && { echo "   SKIPPED: only ${limit}s left"; limit=1; }
timeout "$limit" "$PY" benchmarks/gpu/generate_timing.py "$MODEL" "$CTX" "$GN1" "$GN2" "$GREP" "$OUT/generate_b1.json" 2>> "$ERR" | cut -c1-400
echo "   rc=${PIPESTATUS[0]} wall=$(( $(now_ms) - t0 )) ms"
echo "== stderr tail"; grep -v '^\s*$' "$ERR" | tail -n 15 | cut -c1-300
echo "== summary"
"$PY" benchmarks/gpu/summarize.py "$OUT" 2>&1 | tee "$OUT/summary.txt"
