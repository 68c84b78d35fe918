#!/usr/bin/env bash
# Measured vs predicted step time of the CPU reference executor (issue 8), on this machine.
# Calibrates (1 and 2 ranks) into OUT_DIR, then runs each plan for 20 steps and prints
# ranks | model | plan | measured ms (median step) | predicted ms | error, and the mean |error|.
#   bash validation/executor/measure_cpu.sh [BUILD_DIR] [OUT_DIR]
# Timings need an otherwise idle machine with a core per rank (see docs/executor.md).
set -euo pipefail
B="$(cd "${1:-build}" && pwd)/cli/scaleplan"
OUT="${2:-$(mktemp -d)}"
mkdir -p "$OUT" && cd "$OUT"
MPI=(mpirun --oversubscribe --allow-run-as-root --mca btl_vader_single_copy_mechanism none)
"$B" calibrate --out cal1.yaml >/dev/null
"${MPI[@]}" -np 2 "$B" calibrate --out cal2.yaml >/dev/null </dev/null
: >rows.txt
while IFS='|' read -r np model plan; do
  if [ "$np" = 1 ]; then
    out=$("$B" run --model "$model" --cluster cal1.yaml --plan "$plan" --steps 20 --json)
  else
    out=$("${MPI[@]}" -np 2 "$B" run --model "$model" --cluster cal2.yaml --plan "$plan" --steps 20 --json </dev/null)
  fi
  python3 -c '
import json, sys
j = json.loads(sys.argv[1]); m = j.get("step_s_median", j["measured"]["time"]["step_s"]); p = j["predicted"]["time"]["step_s"]
print(f"{sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {m*1e3:.1f} | {p*1e3:.1f} | {100*(p-m)/m:+.0f}%")' "$out" "$np" "$model" "$plan" | tee -a rows.txt
done <<'PLANS'
1|gpt-tiny|mbs=4,gbs=4
1|gpt-tiny|mbs=4,gbs=8,recompute=full
1|gpt-tiny|mbs=4,gbs=4,recompute=selective
1|gpt-small|mbs=1,gbs=1
2|gpt-tiny|dp=2,gbs=8,mbs=4
2|gpt-tiny|dp=2,gbs=8,mbs=4,zero=3
2|gpt-tiny|tp=2,mbs=4,gbs=4
2|gpt-tiny|tp=2,sp=on,mbs=4,gbs=4
2|gpt-tiny|pp=2,mbs=2,gbs=8
2|gpt-small|dp=2,gbs=2
PLANS
python3 -c '
import sys
e = [abs(float(l.rsplit("|", 1)[1].strip().rstrip("%"))) for l in open("rows.txt")]
print(f"mean |error| {sum(e)/len(e):.1f}% over {len(e)} plans, max {max(e):.0f}%")'
