#!/usr/bin/env bash
# Fuzzes rootfix's parsers with cargo fuzz (libFuzzer), on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target (default: all) for SECONDS (default 60)
#   scripts/fuzz.sh --runs N [TARGET...]    each target for N executions
#   scripts/fuzz.sh --smoke                 CI: every target for 10 s, built unoptimized (--dev:
#                                           a shorter build, slower executions)
#
# Targets: webhook, catalog, template, matcher, config (fuzz/fuzz_targets/). Each starts from the
# committed seeds (fuzz/seeds/TARGET: captured Alertmanager payloads, the shipped playbooks and
# actions, the invalid fixtures, the example config) and keeps what it learns in fuzz/corpus/TARGET.
# A crash stops the run, prints the input's path under fuzz/artifacts/TARGET, and exits non-zero;
# replay it with `fuzz/target/x86_64-unknown-linux-gnu/release/TARGET <file>`, then make it a
# regression test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(webhook catalog template matcher config)
seconds=60
runs=''
build=(-s none -a)
profile=release
if [ "${1:-}" = "--smoke" ]; then
  shift
  seconds=10
  build=(--dev -s none)
  profile=debug
elif [ "${1:-}" = "--runs" ]; then
  runs=${2:?--runs needs a number}
  shift 2
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "unknown fuzz target '$t' (one of: ${ALL_TARGETS[*]})" >&2; exit 2; }
done

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz --version 0.13.2
fi

# cargo fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP lets the stable compiler take
# them. No sanitizer (-s none): the targets are safe Rust, and a panic or abort is what is sought.
# Debug assertions on (-a), so overflow and the code's own debug_asserts count as crashes.
export RUSTC_BOOTSTRAP=1
started=$(date +%s)
(
  cd fuzz
  if [ "${#targets[@]}" -eq "${#ALL_TARGETS[@]}" ]; then
    cargo fuzz build "${build[@]}"
  else
    for t in "${targets[@]}"; do cargo fuzz build "${build[@]}" "$t"; done
  fi
)
echo "==> built ${#targets[@]} fuzz target(s) in $(($(date +%s) - started)) s" >&2

# The longest input each target is given: a little over the longest real one (a playbook file with
# its actions is 2-8 KiB, the example config 6 KiB, a matcher or label value well under 1 KiB; a
# webhook body may be large). libFuzzer grows inputs toward this limit, and every byte past what a
# real input holds only slows a run: catalog ran 857 exec/s at 64 KiB and 3,717 at 8 KiB, with
# more features covered.
max_len_of() {
  case $1 in
    webhook) echo 65536 ;;
    catalog | config) echo 8192 ;;
    template) echo 4096 ;;
    matcher) echo 1024 ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  limit=(-max_total_time="$seconds")
  [ -z "$runs" ] || limit=(-runs="$runs")
  log=fuzz/artifacts/$t/last-run.log
  if [ -n "$runs" ]; then budget="$runs runs"; else budget="$seconds s"; fi
  echo "==> fuzzing $t ($budget)" >&2
  if ! fuzz/target/x86_64-unknown-linux-gnu/$profile/"$t" \
    "fuzz/corpus/$t" "fuzz/seeds/$t" \
    -artifact_prefix="fuzz/artifacts/$t/" -max_len="$(max_len_of "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${limit[@]}" >"$log" 2>&1; then
    status=1
    grep -E 'panicked|ERROR|Test unit written|artifact' "$log" | head -n 20 >&2 || true
    echo "==> $t FAILED; the whole log: $log" >&2
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  echo "==> $t: ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-cov ?}, no crash" >&2
done
exit "$status"
