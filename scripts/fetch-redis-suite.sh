#!/usr/bin/env bash
# Fetches the official Redis 7.0.15 sources (for their Tcl test suite) from
# Debian's source package into DIR, without touching the system's apt sources.
# Usage: scripts/fetch-redis-suite.sh DIR
set -euo pipefail
dir=${1:?usage: fetch-redis-suite.sh DIR}
if [ -x "$dir/runtest" ]; then
  echo "redis suite already in $dir"; exit 0
fi
command -v tclsh >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcl; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
printf 'deb-src http://deb.debian.org/debian bookworm main\ndeb-src http://deb.debian.org/debian-security bookworm-security main\n' >"$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" source --download-only redis >/dev/null)
orig=$(ls "$work"/redis_7.0.*.orig.tar.gz | head -n1)
mkdir -p "$dir"
tar -xzf "$orig" -C "$dir" --strip-components=1
echo "redis suite unpacked in $dir"
