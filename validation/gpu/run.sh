#!/usr/bin/env bash
# GPU validation of scaleplan (issue 9) on a machine with one NVIDIA GPU.
#
#   bash validation/gpu/run.sh [OUT_DIR]        # from a source checkout: builds, then runs
#   bash gpu-bundle/run.sh [OUT_DIR]            # from a prebuilt bundle (validation/gpu/make_bundle.sh)
#   SCALEPLAN_PREBUILT=<dir> bash validation/gpu/run.sh [OUT_DIR]   # binary from <dir>
#
# OUT_DIR defaults to $OUT, else ./gpu-results. Sections run as separate processes, each under its
# own time limit (a crash or a stuck kernel in one does not lose the others); each writes
# OUT_DIR/<section>.{json,md} as it goes. At the end OUT_DIR/results.md and OUT_DIR/results.json
# gather them. Total wall time: ~2 minutes on one H100/H200; hard cap ~445 s (< 7.5 minutes).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUTDIR="${1:-${OUT:-$PWD/gpu-results}}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
LOG="$OUTDIR/log.txt"
: >"$LOG"
say() { echo "[run.sh $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
T0=$(date +%s)

# ---- the program -------------------------------------------------------------------------------
BIN=""
if [ -n "${SCALEPLAN_PREBUILT:-}" ]; then
  BIN="$SCALEPLAN_PREBUILT/scaleplan_gpu_validate"
elif [ -x "$HERE/scaleplan_gpu_validate" ]; then
  BIN="$HERE/scaleplan_gpu_validate"
else
  REPO="$(cd "$HERE/../.." && pwd)"
  BUILD="${SCALEPLAN_GPU_BUILD_DIR:-$REPO/build-gpu}"
  say "building scaleplan_gpu_validate (then, best effort, the CLI with its CUDA module and the GPU unit tests) in $BUILD"
  CONF=(-DCMAKE_BUILD_TYPE=Release -DSCALEPLAN_BUILD_BENCH=OFF -DSCALEPLAN_WITH_MPI=OFF -DSCALEPLAN_WITH_GUI=OFF
        -DSCALEPLAN_WITH_SIMGRID=OFF -DSCALEPLAN_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}")
  # The unit tests need GoogleTest; without it the configure fails and is redone without tests.
  EXTRA="scaleplan test_cuda_backend"
  cmake -S "$REPO" -B "$BUILD" "${CONF[@]}" -DSCALEPLAN_BUILD_TESTS=ON >>"$LOG" 2>&1 ||
    { EXTRA="scaleplan"; cmake -S "$REPO" -B "$BUILD" "${CONF[@]}" -DSCALEPLAN_BUILD_TESTS=OFF >>"$LOG" 2>&1; }
  if ! cmake --build "$BUILD" -j"$(nproc)" --target scaleplan_gpu_validate >>"$LOG" 2>&1; then
    say "BUILD FAILED (see $LOG). On a machine without the project's dev packages use a prebuilt bundle."
    exit 2
  fi
  cmake --build "$BUILD" -j"$(nproc)" --target $EXTRA >>"$LOG" 2>&1 || say "note: $EXTRA did not build (see $LOG); their sections are skipped"
  BIN="$BUILD/executor/cuda/validation_gpu/scaleplan_gpu_validate"
fi
[ -x "$BIN" ] || { say "no program at $BIN"; exit 2; }
BINDIR="$(cd "$(dirname "$BIN")" && pwd)"

# ---- shared libraries: the bundle's own, then the machine's CUDA (cuBLAS) ----------------------
LIBS="$BINDIR/lib:$BINDIR"
for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
         /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu; do
  [ -d "$d" ] && LIBS="$LIBS:$d"
done
# pip-installed CUDA libraries (nvidia-cublas-cu13 and similar) as a last resort
# (nvidia/*/lib: also nvidia-nccl-cu13's nvidia/nccl/lib, which the unit tests and the CLI load)
for d in $(python3 -c 'import sys,glob; [print(p) for s in sys.path for p in glob.glob(s+"/nvidia/*/lib")]' 2>/dev/null); do
  LIBS="$LIBS:$d"
done
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$BIN" 2>/dev/null | grep -q "not found"; then
  say "WARNING: unresolved libraries:"; ldd "$BIN" | grep "not found" | tee -a "$LOG"
fi
# (bounded: nvidia-smi can hang on a GPU in a bad state, and the run must end in time)
command -v nvidia-smi >/dev/null && timeout -k 2 10 nvidia-smi >"$OUTDIR/nvidia-smi.txt" 2>&1
say "program: $BIN"
say "results: $OUTDIR"

# ---- sections: name, soft budget (the program stops starting new work), hard limit (killed) -------
# Hard limits (with nvidia-smi's 10 s, the unit tests' 40 s and the executor's 2 x 25 s below) sum to
# 425 s (+2 s grace per kill, 10 kills: 445 s) < 7.5 min, so the whole run ends well inside 8 minutes
# even if every section stalls; a normal run takes ~2 minutes.
SECTIONS=(
  "info 10 15"
  "predict 10 15"
  "numerics 35 50"
  "gemm 40 60"
  "layer 40 55"
  "step 40 60"
  "offload 45 70"
)
STATUS=()
for s in "${SECTIONS[@]}"; do
  set -- $s
  name=$1 budget=$2 hard=$3
  say "section $name (budget ${budget}s, limit ${hard}s)"
  timeout -k 2 "$hard" "$BIN" --section "$name" --out "$OUTDIR" --budget-s "$budget" ${SCALEPLAN_GPU_QUICK:+--quick} 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) STATUS+=("$name: ok") ;;
    124|137) STATUS+=("$name: KILLED at the ${hard}s limit (partial rows kept)")
             printf '\n**section killed at the %ss limit; rows above are what finished.**\n' "$hard" >>"$OUTDIR/$name.md" ;;
    *) STATUS+=("$name: exit $rc") ;;
  esac
  say "section $name: exit $rc ($(( $(date +%s) - T0 ))s elapsed)"
done

# ---- the GPU unit tests (tests/test_cuda_backend), when the bundle or the build has them ----------
TESTBIN=""
[ -x "$BINDIR/test_cuda_backend" ] && TESTBIN="$BINDIR/test_cuda_backend"
[ -z "$TESTBIN" ] && [ -x "$BINDIR/../../../tests/test_cuda_backend" ] && TESTBIN="$BINDIR/../../../tests/test_cuda_backend"
# The unit tests and the CLI link NCCL and the machine's libstdc++ dynamically (the validation
# program does not): say so when the loader cannot resolve them instead of a bare "exit 127".
missing_libs() { ldd "$1" 2>/dev/null | grep "not found" | awk '{print $1}' | tr '\n' ' '; }
if [ -n "$TESTBIN" ]; then
  say "section unit (GPU unit tests, limit 40s)"
  ML="$(missing_libs "$TESTBIN")"; [ -n "$ML" ] && say "WARNING: test_cuda_backend: unresolved libraries: $ML"
  timeout -k 2 40 "$TESTBIN" --gtest_output="json:$OUTDIR/unit_gtest.json" >"$OUTDIR/unit.txt" 2>&1
  rc=$?
  { echo "## GPU unit tests (tests/test_cuda_backend)"; echo; [ -n "$ML" ] && echo "unresolved libraries: $ML" && echo; echo '```'; grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|error" "$OUTDIR/unit.txt" | head -40; echo '```'; echo; echo "exit $rc"; } >"$OUTDIR/unit.md"
  STATUS+=("unit: exit $rc")
  SECTIONS+=("unit 0 0")
  say "section unit: exit $rc"
fi

# ---- the reference executor on the CUDA backend: `scaleplan run --backend cuda` vs `--backend cpu` ----
CLIBIN=""
[ -x "$BINDIR/scaleplan" ] && CLIBIN="$BINDIR/scaleplan"
[ -z "$CLIBIN" ] && [ -x "$BINDIR/../../../cli/scaleplan" ] && CLIBIN="$BINDIR/../../../cli/scaleplan"
if [ -n "$CLIBIN" ] && command -v python3 >/dev/null; then
  DATA=()
  [ -f "$BINDIR/corpus.txt" ] && DATA=(--data "$BINDIR/corpus.txt")
  say "section executor (scaleplan run, gpt-small, cpu vs cuda, limit 2 x 25s)"
  : >"$OUTDIR/run_status.txt"
  ML="$(missing_libs "$CLIBIN")"; [ -n "$ML" ] && { say "WARNING: scaleplan CLI: unresolved libraries: $ML"; echo "unresolved libraries: $ML" >>"$OUTDIR/run_status.txt"; }
  for be in cpu cuda; do
    timeout -k 2 25 "$CLIBIN" run --model gpt-small --plan "dp=1,mbs=4,gbs=8" --steps 5 --backend "$be" --json "${DATA[@]}" \
      >"$OUTDIR/run_$be.json" 2>"$OUTDIR/run_$be.err"
    echo "$be: exit $?" >>"$OUTDIR/run_status.txt"
  done
  python3 - "$OUTDIR" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(be):
    try:
        with open(os.path.join(out, "run_%s.json" % be)) as f:
            return json.load(f)
    except Exception as e:
        p = os.path.join(out, "run_%s.err" % be)
        err = open(p).read().strip()[-400:] if os.path.exists(p) else ""
        return {"error": "%s %s" % (e, err)}
cpu, cuda = load("cpu"), load("cuda")
lines = ["## Reference executor on the CUDA backend (scaleplan run, gpt-small, dp=1, mbs 4, gbs 8, 5 steps, fp32)", ""]
res = {"section": "executor", "cpu": cpu, "cuda": cuda}
if "loss" in cpu and "loss" in cuda:
    lc, lg = cpu["loss"], cuda["loss"]
    worst = max(abs(a - b) / abs(a) for a, b in zip(lc, lg))
    res["max_rel_loss_diff"] = worst
    lines += ["| step | loss cpu | loss cuda | rel. diff |", "|---|---|---|---|"]
    for i, (a, b) in enumerate(zip(lc, lg)):
        lines.append("| %d | %.6f | %.6f | %.1e |" % (i + 1, a, b, abs(a - b) / abs(a)))
    st = lambda r: r.get("measured", {}).get("time", {}).get("step_s", 0)
    lines += ["", "- step time: cpu %.4f s, cuda %.4f s" % (st(cpu), st(cuda)),
              "- backend implementations: %s / %s" % (cpu.get("backend_impl", "?"), cuda.get("backend_impl", "?")),
              "- max relative loss difference %.2e (fp32 both; tolerance 1e-4 over 5 steps): %s" % (worst, "pass" if worst <= 1e-4 else "FAIL")]
    mc, mg = cpu.get("measured", {}).get("memory", {}), cuda.get("measured", {}).get("memory", {})
    if mc and mg:
        lines += ["", "| memory (B) | cpu | cuda |", "|---|---|---|"] + ["| %s | %s | %s |" % (k, mc.get(k), mg.get(k)) for k in mc]
    res["status"] = "ok" if worst <= 1e-4 else "failed"
else:
    lines.append("- failed: cpu: %s; cuda: %s" % (cpu.get("error", "ok"), cuda.get("error", "ok")))
    res["status"] = "failed"
open(os.path.join(out, "executor.md"), "w").write("\n".join(lines) + "\n")
json.dump(res, open(os.path.join(out, "executor.json"), "w"), indent=2)
EOF
  STATUS+=("executor: $(tr '\n' ' ' <"$OUTDIR/run_status.txt")")
  SECTIONS+=("executor 0 0")
fi

# ---- gather -------------------------------------------------------------------------------------
DEV="$(grep -m1 -o '"value": "[^"]*"' "$OUTDIR/info.json" 2>/dev/null | head -1 | sed 's/"value": "//; s/"$//')"
{
  echo "# scaleplan GPU validation"
  echo
  echo "- device: ${DEV:-unknown}"
  echo "- date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- wall time: $(( $(date +%s) - T0 )) s"
  for st in "${STATUS[@]}"; do echo "- $st"; done
  echo
  for s in "${SECTIONS[@]}"; do
    set -- $s
    [ -f "$OUTDIR/$1.md" ] && { cat "$OUTDIR/$1.md"; echo; }
  done
} >"$OUTDIR/results.md"
if command -v python3 >/dev/null; then
  python3 - "$OUTDIR" "${DEV:-unknown}" <<'EOF'
import json, os, sys, time
out, dev = sys.argv[1], sys.argv[2]
res = {"device": dev, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sections": {}}
for name in ["info", "predict", "numerics", "gemm", "layer", "step", "offload", "unit_gtest", "executor"]:
    p = os.path.join(out, name + ".json")
    try:
        with open(p) as f:
            res["sections"][name] = json.load(f)
    except Exception as e:  # missing or cut short
        res["sections"][name] = {"status": "missing", "error": str(e)}
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(res, f, indent=2)
EOF
fi
say "done in $(( $(date +%s) - T0 )) s: $OUTDIR/results.md, $OUTDIR/results.json"
cat "$OUTDIR/results.md"
