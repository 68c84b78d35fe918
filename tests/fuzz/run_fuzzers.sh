#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a fixed time (issue 17, docs/reliability.md).
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
# Seeds come from configs/, validation/ and the bad-input corpus (tests/bad_inputs, whose plan
# strings are cut out of expectations.txt); what a target learns is kept in BUILD_DIR/corpus/<target>.
# Limits: a run over 5 s is a hang (-timeout=5), 2 GiB is the memory cap. Findings are written to
# BUILD_DIR/artifacts/; the script exits non-zero when any target reports one. The line
# "fuzz: TARGET executions N" gives each count (libFuzzer's stat::number_of_executed_units).
set -euo pipefail
build=$1
secs=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_model_yaml fuzz_cluster_yaml fuzz_device_yaml fuzz_plan_string fuzz_plan_yaml fuzz_runs_yaml)

seed() {  # target -> seed files
  case $1 in
    fuzz_model_yaml) ls "$src"/configs/models/*.yaml "$src"/tests/bad_inputs/model_*.yaml ;;
    fuzz_cluster_yaml) ls "$src"/configs/clusters/*.yaml "$src"/tests/bad_inputs/cluster_*.yaml ;;
    fuzz_device_yaml) ls "$src"/configs/devices/*.yaml "$src"/tests/bad_inputs/device_*.yaml ;;
    fuzz_plan_yaml) ls "$src"/configs/plans/*.yaml "$src"/tests/bad_inputs/plan_*.yaml ;;
    fuzz_runs_yaml) ls "$src"/validation/*_runs.yaml "$src"/tests/bad_inputs/runs_*.yaml ;;
    fuzz_plan_string) ;;
  esac
}

status=0
total=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  [ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 1; }
  corpus="$build/corpus/$t"
  seeds="$build/seeds/$t"
  mkdir -p "$corpus" "$seeds" "$build/artifacts"
  while IFS= read -r f; do cp -f "$f" "$seeds/"; done < <(seed "$t")
  if [ "$t" = fuzz_plan_string ]; then
    n=0
    while IFS= read -r p; do n=$((n + 1)); printf '%s' "$p" > "$seeds/plan-$n"; done \
      < <(grep -o -- '--plan [^ ]*' "$src/tests/bad_inputs/expectations.txt" | cut -d' ' -f2 | grep = | sort -u)
  fi
  log="$build/artifacts/$t.log"
  rc=0
  "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$corpus" "$seeds" > "$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  total=$((total + ${runs:-0}))
  echo "fuzz: $t executions ${runs:-0} seconds $secs exit $rc"
  if [ "$rc" -ne 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|fuzz finding|Test unit written|terminate called' "$log" | head -20 >&2 || true
  fi
done
echo "fuzz: total executions $total"
exit $status
