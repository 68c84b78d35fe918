#!/usr/bin/env bash
# Measured vs predicted step time and buffers of the CPU reference executor (issues 8, 22), on this
# machine. Calibrates once per rank count into OUT_DIR (`calibrate` under mpirun -np N), then runs
# every plan for STEPS steps, REPEATS times back to back (the whole table per repeat), and prints
#   repeat | ranks | model | plan | measured ms (median step) | predicted ms | error | buffers meas/pred KiB
#   | steal (the hypervisor's share of the cores during the run, /proc/stat)
# then per rank count and repeat the mean and max |error|, and per plan the spread of the measured
# median over the repeats.
#   bash validation/executor/measure_cpu.sh [BUILD_DIR] [OUT_DIR]
#   env: RANKS="1 2 4" (rank counts to measure), REPEATS=3, STEPS=20, CAL_BUDGET=0.4 (calibrate
#   --budget: seconds per measurement; 8x the default, so that its three interleaved passes span
#   several seconds each and a slow phase of a shared VM spoils one pass, not the median),
#   CAL_EACH=0 (1: calibrate again right before every run, with the default budget: a calibration
#   describes the machine as it is then, and a shared VM's speed drifts over minutes)
# Timings need an otherwise idle machine; more ranks than cores run with --oversubscribe (stated
# in the output). The table with the machine's load goes to docs/executor.md.
set -euo pipefail
B="$(cd "${1:-build}" && pwd)/cli/scaleplan"
OUT="${2:-$(mktemp -d)}"
RANKS="${RANKS:-1 2 4}"
REPEATS="${REPEATS:-3}"
STEPS="${STEPS:-20}"
CAL_BUDGET="${CAL_BUDGET:-0.4}"
CAL_EACH="${CAL_EACH:-0}"
mkdir -p "$OUT" && cd "$OUT"
MPI=(mpirun --oversubscribe --allow-run-as-root --mca btl_vader_single_copy_mechanism none)
CORES=$(nproc)
echo "machine: $(uname -n), $CORES cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU time the hypervisor gave to other guests (/proc/stat "steal", clock ticks over all cores):
# printed per run as a share of the run's core time, a sign of a busy host.
steal() { awk '/^cpu /{print $9}' /proc/stat; }
launch() {  # ranks, command...
  local np=$1; shift
  if [ "$np" = 1 ]; then "$@"; else "${MPI[@]}" -np "$np" "$@" </dev/null; fi
}
for np in $RANKS; do
  launch "$np" "$B" calibrate --budget "$CAL_BUDGET" --out "cal$np.yaml" >/dev/null 2>&1
  [ "$np" -gt "$CORES" ] && echo "$np ranks: oversubscribed ($np ranks on $CORES cores, mpirun --oversubscribe)"
done
PLANS='1|gpt-tiny|mbs=4,gbs=4
1|gpt-tiny|mbs=4,gbs=8,recompute=full
1|gpt-tiny|mbs=4,gbs=4,recompute=selective
1|gpt-small|mbs=1,gbs=1
2|gpt-tiny|dp=2,gbs=8,mbs=4
2|gpt-tiny|dp=2,gbs=8,mbs=4,zero=3
2|gpt-tiny|tp=2,mbs=4,gbs=4
2|gpt-tiny|tp=2,sp=on,mbs=4,gbs=4
2|gpt-tiny|pp=2,mbs=2,gbs=8
2|gpt-tiny|pp=2,mbs=2,gbs=8,schedule=gpipe
2|gpt-small|dp=2,gbs=2
4|gpt-tiny|dp=4,gbs=8,mbs=2
4|gpt-tiny|tp=4,mbs=4,gbs=4
4|gpt-tiny|dp=2,tp=2,sp=on,zero=1,mbs=4,gbs=8
4|gpt-small|pp=4,mbs=1,gbs=8
4|gpt-small|pp=4,mbs=1,gbs=8,schedule=gpipe
4|gpt-small|dp=2,pp=2,mbs=1,gbs=4'
: >rows.txt
for rep in $(seq 1 "$REPEATS"); do
  while IFS='|' read -r np model plan; do
    case " $RANKS " in *" $np "*) ;; *) continue ;; esac
    [ "$CAL_EACH" = 1 ] && launch "$np" "$B" calibrate --out "cal$np.yaml" >/dev/null 2>&1
    st0=$(steal); t0=$(date +%s.%N)
    out=$(launch "$np" "$B" run --model "$model" --cluster "cal$np.yaml" --plan "$plan" --steps "$STEPS" --json)
    st1=$(steal); t1=$(date +%s.%N)
    python3 -c '
import json, sys
j = json.loads(sys.argv[1]); m = j["measured"]["time"]["step_s_median"]; p = j["predicted"]["time"]["step_s"]
bm = j["measured"]["memory"]["buffers"] / 1024; bp = j["predicted"]["memory"]["buffers"] / 1024
st = (int(sys.argv[7]) - int(sys.argv[6])) / float(sys.argv[10]) / (float(sys.argv[9]) - float(sys.argv[8])) / int(sys.argv[11])
print(f"{sys.argv[5]} | {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {m*1e3:.2f} | {p*1e3:.2f} | {100*(p-m)/m:+.1f}% | {bm:.0f}/{bp:.0f} {100*(bp-bm)/bm:+.0f}% | {100*st:.1f}%")' \
      "$out" "$np" "$model" "$plan" "$rep" "$st0" "$st1" "$t0" "$t1" "$(getconf CLK_TCK)" "$CORES" | tee -a rows.txt
  done <<<"$PLANS"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - <<'EOF'
from collections import defaultdict
rows = [[c.strip() for c in l.split("|")] for l in open("rows.txt")]
err = defaultdict(list); buf = defaultdict(list); meas = defaultdict(list)
for rep, np, model, plan, m, p, e, b, st in rows:
    err[(int(np), rep)].append(abs(float(e.rstrip("%"))))
    buf[int(np)].append(abs(float(b.split()[-1].rstrip("%"))))
    meas[(np, model, plan)].append(float(m))
for (np, rep), e in sorted(err.items()):
    print(f"{np} rank(s), repeat {rep}: mean |error| {sum(e)/len(e):.1f}% max {max(e):.1f}% over {len(e)} plans")
for np, b in sorted(buf.items()):
    print(f"{np} rank(s): buffers mean |error| {sum(b)/len(b):.0f}% max {max(b):.0f}%")
print("spread of the measured median step over repeats (min..max ms, max/min - 1):")
for k, v in meas.items():
    print(f"  {k[0]} | {k[1]} | {k[2]}: {min(v):.2f}..{max(v):.2f} ms ({100*(max(v)/min(v)-1):.1f}%)")
EOF
