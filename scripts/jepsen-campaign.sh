#!/usr/bin/env bash
# A campaign of memlog-jepsen runs (`make jepsen`; docs/jepsen.md).
#
# Environment:
#   TIME=600        total seconds; no run starts that would end after it
#   RUN_TIME=45     seconds of workload per run
#   SEEDS="1 2 3"   fixed seeds, one run each (default: random seeds until TIME)
#   MODE=embedded   embedded | cluster
#   MIXES="kill pause partition delay pause,partition,delay all"
#                   nemesis mixes, used in turn
#   JEPSEN_ARGS=    extra memlog-jepsen options
#   BIN=target/debug/memlog-jepsen
# Prints a Markdown table (also written to <out>/results.md); exits 1 if any
# run found a violation or failed to run.
set -u
TIME=${TIME:-600}
RUN_TIME=${RUN_TIME:-45}
MODE=${MODE:-embedded}
MIXES=${MIXES:-"kill pause partition delay pause,partition,delay all"}
BIN=${BIN:-target/debug/memlog-jepsen}
JEPSEN_ARGS=${JEPSEN_ARGS:-}
out=target/jepsen/campaign-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
read -r -a mixes <<< "$MIXES"
seeds=()
if [ -n "${SEEDS:-}" ]; then read -r -a seeds <<< "$SEEDS"; fi

start=$(date +%s)
rows=()
bad=0
i=0
while :; do
  now=$(date +%s)
  if [ ${#seeds[@]} -gt 0 ]; then
    [ $i -ge ${#seeds[@]} ] && break
    seed=${seeds[$i]}
  else
    # a run takes RUN_TIME plus start-up, healing and checking (~15 s)
    [ $((now - start + RUN_TIME + 15)) -gt "$TIME" ] && break
    seed=$(( (RANDOM << 15 | RANDOM) ))
  fi
  mix=${mixes[$((i % ${#mixes[@]}))]}
  i=$((i + 1))
  log="$out/run-$i.log"
  # shellcheck disable=SC2086
  "$BIN" --mode "$MODE" --time "$RUN_TIME" --seed "$seed" --nemesis "$mix" \
    --out "$out" $JEPSEN_ARGS > "$log" 2>&1
  rc=$?
  summary=$(grep -m1 '^ops=' "$log" || true)
  dir=$(grep -m1 '^run: ' "$log" | sed 's/^run: //; s/ seed=.*//')
  case $rc in
    0) verdict=PASS ;;
    1) verdict=FAIL; bad=1 ;;
    2) verdict=UNKNOWN ;;
    *) verdict=ERROR; bad=1; summary=$(grep -m1 'error' "$log" | cut -c1-100) ;;
  esac
  row="| $i | $MODE | $seed | $mix | $verdict | ${summary:-} | ${dir:-$log} |"
  echo "$row"
  rows+=("$row")
done

{
  echo "| # | mode | seed | nemesis | result | summary | run |"
  echo "|---|------|------|---------|--------|---------|-----|"
  printf '%s\n' "${rows[@]}"
} > "$out/results.md"
echo
echo "memlog-jepsen campaign: $i runs in $(( $(date +%s) - start )) s; table in $out/results.md"
echo
cat "$out/results.md"
exit $bad
