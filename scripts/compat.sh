#!/usr/bin/env bash
# Runs the official Redis 7.0 Tcl suite (external mode, core profile) against
# a fresh memlog server and prints per-unit results.
#
# After each unit the server is also killed with SIGKILL and restarted on
# its data: the data set it recovers from its log must have the same
# DEBUG DIGEST in every database as the one it served, and no logged effect
# may fail to apply. That turns the whole suite into a recovery test of the
# effects every command logs. RECOVERY_CHECK=0 skips it.
#
# Usage: scripts/compat.sh REDIS_SRC [UNITS...]
set -euo pipefail
src=${1:?usage: compat.sh REDIS_SRC [UNITS...]}
shift
units=${*:-"unit/type/string unit/type/incr unit/type/list unit/type/hash unit/type/set unit/type/zset unit/expire unit/keyspace unit/multi unit/pubsub unit/info-command unit/protocol"}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MEMLOG_BIN:-$root/target/release/memlog}
suite=${REDIS_SUITE_SH:-$root/../shared/tools/redis-suite.sh}
check=${RECOVERY_CHECK:-1}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
pid=
start() {
  "$bin" server --bind 127.0.0.1 --port "$port" --data-dir "$data/data" >>"$data/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "memlog did not start; its log:" >&2
  tail -20 "$data/server.log" >&2
  exit 1
}
digest() {
  for db in $(seq 0 15); do redis-cli -p "$port" -n "$db" debug digest; done | md5sum | cut -c1-16
}
trap '{ kill -9 $pid; wait $pid; } 2>/dev/null || true; rm -rf "$data"' EXIT
start
if [ "$check" = 0 ]; then
  bash "$suite" --units "$units" --show-failures --timeout 600 127.0.0.1 "$port" "$src"
  exit
fi
status=0
passed=0
failed=0
mismatches=0
header=
for unit in $units; do
  out=$(bash "$suite" --units "$unit" --show-failures --timeout 600 127.0.0.1 "$port" "$src" 2>&1) || status=1
  # The suite's settings line once, then each unit's lines.
  [ -z "$header" ] && header=1 && printf '%s\n' "$out" | grep '^# profile' || true
  printf '%s\n' "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$|^# profile' || true
  if total=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1); then
    passed=$((passed + $(echo "$total" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$total" | cut -d' ' -f3)))
  fi
  served=$(digest)
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  start
  recovered=$(digest)
  if [ "$served" = "$recovered" ]; then
    echo "    recovery after $unit: same data set (digest $served)"
  else
    echo "    recovery after $unit: DATA SET DIFFERS (served $served, recovered $recovered)"
    mismatches=$((mismatches + 1))
  fi
done
apply_errors=$(grep -c -E 'failed to apply|undecodable log entry' "$data/server.log" || true)
echo "$passed passed, $failed failed"
echo "recovery: $mismatches of $(echo $units | wc -w) restarts differed; $apply_errors log records failed to apply"
if [ "$mismatches" != 0 ] || [ "$apply_errors" != 0 ]; then
  grep -E 'failed to apply|undecodable log entry' "$data/server.log" | head -20
  exit 1
fi
exit "$status"
