#!/usr/bin/env bash
# Runs the official Redis 7.0 Tcl suite (external mode, core profile) against
# a fresh memlog server and prints per-unit results.
# Usage: scripts/compat.sh REDIS_SRC [UNITS...]
set -euo pipefail
src=${1:?usage: compat.sh REDIS_SRC [UNITS...]}
shift
units=${*:-"unit/type/string unit/type/incr unit/type/list unit/type/hash unit/type/set unit/type/zset unit/expire unit/keyspace unit/multi unit/pubsub unit/info-command unit/protocol"}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MEMLOG_BIN:-$root/target/release/memlog}
suite=${REDIS_SUITE_SH:-$root/../shared/tools/redis-suite.sh}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
"$bin" server --bind 127.0.0.1 --port "$port" --data-dir "$data/data" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
bash "$suite" --units "$units" --show-failures --timeout 600 127.0.0.1 "$port" "$src"
