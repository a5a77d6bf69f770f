#!/usr/bin/env bash
# Manual check (not in `make test`: minutes and GBs): a txlog follower that
# was down while ~SIZE_MB of entries were appended and the log was purged
# catches up through a snapshot of that size. Prints the times and sizes.
#
#   scripts/txlog-big-snapshot.sh [SIZE_MB] [BASE_PORT]
#
# Three `memlog txlog` nodes on 127.0.0.1 with data under target/, node 3
# stopped during the load; every process is ended by PID on exit.
set -euo pipefail
SIZE_MB=${1:-1024}
P1=${2:-17601}
P2=$((P1 + 1)); P3=$((P1 + 2))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/target/release/memlog
[ -x "$B" ] || cargo build --release -p memlog
D=$(mktemp -d "$ROOT/target/big-snapshot.XXXXXX")
INIT="1=127.0.0.1:$P1,2=127.0.0.1:$P2,3=127.0.0.1:$P3"
ADDRS="127.0.0.1:$P1,127.0.0.1:$P2"
declare -A PID
start() { # id port
  "$B" txlog --id "$1" --bind "127.0.0.1:$2" --data-dir "$D/n$1" --init "$INIT" \
    --snapshot-every 200 >>"$D/n$1.log" 2>&1 &
  PID[$1]=$!
}
cleanup() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
start 1 "$P1"; start 2 "$P2"; start 3 "$P3"
sleep 3
kill "${PID[3]}"; wait "${PID[3]}" 2>/dev/null || true; unset 'PID[3]'
# 256 KiB appends from 8 appenders until about SIZE_MB are in the log.
SECS=$(( SIZE_MB / 10 + 5 ))
echo "loading for ~${SECS}s (target ${SIZE_MB} MB) with node 3 down"
t0=$(date +%s)
"$B" txlog bench --addr "$ADDRS" --clients 8 --payload 262144 --seconds "$SECS" --fsync-dir "$D" | grep appenders=
echo "load took $(( $(date +%s) - t0 ))s; leader status:"
"$B" txlog status --addr "127.0.0.1:$P1" | tee "$D/status1"
last=$(grep -oE 'last_lsn=[0-9]+' "$D/status1" | head -1 | cut -d= -f2)
echo "disk: n1 $(du -sm "$D/n1" | cut -f1) MB"
t0=$(date +%s.%N)
start 3 "$P3"
# Status is answered by the leader; node 3's own log says when it installed.
until grep -q "installed snapshot" "$D/n3.log"; do sleep 0.5; done
t1=$(date +%s.%N)
echo "node 3 installed the snapshot (log at lsn $last) $(echo "$t1 - $t0" | bc) s after its start"
echo "snapshot files (the leader's was sent; node 3 keeps what it received as its current snapshot):"
ls -la "$D"/n*/snapshots
