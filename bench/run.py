#!/usr/bin/env python3
"""memlog against Redis on the same machine, in one run (`make bench`).

The harness starts each *system under test* in turn: a fresh process on a
free 127.0.0.1 port with its own temporary data directory, which it measures
and then stops by PID.  Every process it starts asks the kernel to send it
SIGTERM if the harness dies (PR_SET_PDEATHSIG), so nothing outlives a run.

For each system it measures, in this order:

1. Memory: it loads KEYS keys (``key:%012d``, 256-byte values, pipelined
   from this script) and reads the server's VmRSS from /proc/PID/status
   (right after the load, and again after SETTLE_S seconds idle) and
   ``used_memory`` from ``INFO memory`` (absent on servers without it).
   The same keys are the ones redis-benchmark's ``-t get`` reads, so GET
   measures hits, not misses.
2. Throughput and latency with redis-benchmark (the same client binary and
   settings for every system): SET, GET, INCR, LPUSH, HSET, ZADD and MIXED,
   50 clients, ``-d 256``, ``-r KEYS``, at each pipeline depth.  Each
   workload first runs a short warm-up, whose throughput also sizes the
   measured run (``-n`` = warm-up ops/s x ``--seconds``), so every run lasts
   about the same time whatever the system's speed.  MIXED is 80% GET /
   20% SET: two redis-benchmark processes run concurrently, GET with 40
   clients and SET with 10 (50 in all), with requests split 80/20; its
   ops/s is all requests over the longer of the two run times, and each of
   its percentiles is the worse of the two processes' (an upper bound).
   Percentiles come from redis-benchmark's detailed (non-CSV) output:
   p50/p99 from its summary, p99.9 from its percentile table (the first
   bucket at or above 99.9%).
3. CPU seconds per workload: the server's utime+stime from /proc/PID/stat
   (all its threads, plus any helper processes of the system) and the
   client's from getrusage(RUSAGE_CHILDREN) around the redis-benchmark runs.
   On a machine with few cores the client competes with the server for CPU.
4. Recovery: for systems that persist, it stops the server, starts it again
   on the same data directory and times start to first successful reply.

Then the goals (issue 5's ratios for the three-node log, ``GOAL_PAIRS``)
once more, in alternation: every system they compare runs at once (keys
loaded as above, then the snapshot or AOF rewrite the load set off waited
out, and 10 s more for the txlog's purge of the load), and each goal's
workload runs on memlog and on its Redis
baseline in turn, GOAL_ROUNDS times, the first of the two alternating; a
round's ratio compares two runs seconds apart, and the median over rounds is
reported.  The machine's speed drifts by tens of percent within minutes,
which a single row per system, measured minutes apart, carries into its
ratio.

Once per run it also measures the disk: 4 KiB write + fdatasync in a loop
in the temporary directory's file system, p50/p99.

Then the transaction log on its own (``txlog``, the issue's "row in make
bench"): three ``memlog txlog`` nodes on loopback and ``memlog txlog bench``
against them (1, 16, 64 and 256 concurrent appenders, 256-byte payloads),
which measures fdatasync on the nodes' disk in the same run and prints the
goal ratios: throughput(64)/throughput(1) >= 30 (group commit) and
p50(1 appender)/p50(fdatasync) <= 3; the latter again over GOAL_ROUNDS
single-appender runs, each right after its own fdatasync probe.

Outputs (in --out, default bench/results/): latest.md (also printed on
stdout), latest.json (raw numbers) and latest.png (gnuplot: ops/s and p99
per system and workload).  ``--smoke`` runs everything tiny (a few seconds,
one pipeline depth) and asserts nothing about the numbers; it exits 1 only
if a Redis row failed (Redis is the reference, so the harness broke).

A system that fails to start, or a workload that fails, becomes a row that
says ``failed: reason``; systems not built yet say ``not yet built``.  To add
a system, add one entry to SYSTEMS (see `System`).

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results"
VALUE_SIZE = 256
CLIENTS = 50
READY_TIMEOUT_S = 120.0  # long enough for a Redis AOF reload of 1M keys
SETTLE_S = 5.0  # idle time before the second RSS reading after the load

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the harness exits."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: list[str], log: Path, cwd: Optional[Path] = None) -> subprocess.Popen:
    """Starts a long-running process whose output goes to `log`."""
    with open(log, "ab") as f:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stops one process by PID: SIGTERM, then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from
    below the kernel's ephemeral range: a port from that range (what
    binding port 0 gives) can be taken as the source port of an outgoing
    connection, such as the txlog nodes' to each other, before the server
    started on it binds it (tests/src/lib.rs does the same)."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    if low > 12000:
        for _ in range(1000):
            port = random.randrange(10000, low)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> Optional[int]:
    """VmRSS from /proc/PID/status, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def children_cpu_seconds() -> float:
    """CPU seconds of this harness's waited-for children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# ---------------------------------------------------------------------------
# A minimal RESP client (for readiness checks, loading keys and INFO)
# ---------------------------------------------------------------------------


class RespError(Exception):
    pass


class Resp:
    """One RESP2 connection; enough for PING, INFO, DBSIZE and bulk loads."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Resp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def encode(*args: bytes | str) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind in (b"*", b"%"):
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n * (2 if kind == b"%" else 1))]
        raise RespError(f"unexpected reply {line[:40]!r}")

    def call(self, *args: bytes | str):
        self.sock.sendall(self.encode(*args))
        return self.read()


def info_field(port: int, section: str, name: str) -> Optional[str]:
    """One field of INFO <section>, or None if INFO or the field is missing."""
    try:
        with Resp(port) as r:
            text = r.call("INFO", section)
    except (RespError, OSError):
        return None
    if not isinstance(text, bytes):
        return None
    for line in text.decode(errors="replace").splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def load_keys(port: int, count: int, connections: int = 16, batch: int = 1000) -> None:
    """SET key:%012d to a 256-byte value for i in 0..count, pipelined over
    several connections at once (a server that fsyncs once per event-loop
    iteration, like Redis with appendfsync always, then fsyncs far less
    often than with one connection)."""
    value = b"v" * VALUE_SIZE
    head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
    tail = b"\r\n$%d\r\n%s\r\n" % (VALUE_SIZE, value)
    errors: list[BaseException] = []

    def load(first: int) -> None:
        try:
            with Resp(port, timeout=120) as r:
                for start in range(first * batch, count, connections * batch):
                    n = min(batch, count - start)
                    r.sock.sendall(b"".join(head + b"key:%012d" % i + tail
                                            for i in range(start, start + n)))
                    for _ in range(n):
                        if r._line() != b"+OK":
                            raise RespError("SET during load did not reply +OK")
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors.append(e)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------
# Systems under test
# ---------------------------------------------------------------------------


@dataclass
class Ctx:
    """What start functions need from the run."""

    memlog_bin: Path
    redis_server: str


@dataclass
class Running:
    """A started system: `server` answers RESP on `port`; `helpers` (e.g.
    txlog nodes) count towards its CPU and are stopped after it."""

    port: int
    data_dir: Path
    server: subprocess.Popen
    log: Path
    helpers: list[subprocess.Popen] = field(default_factory=list)

    def procs(self) -> list[subprocess.Popen]:
        return [self.server, *self.helpers]

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs() if p.poll() is None)

    def alive(self) -> Optional[str]:
        """None while every process runs, else why not."""
        for p in self.procs():
            if p.poll() is not None:
                return f"process {p.pid} exited with {p.returncode}: {log_tail(self.log)}"
        return None

    def stop(self) -> None:
        for p in self.procs():
            stop(p)


# A start function: (ctx, data_dir, port, log) -> Running.  It only starts
# processes; the harness waits for the RESP port to answer.
StartFn = Callable[[Ctx, Path, int, Path], Running]


@dataclass
class System:
    """One system under test.

    name: short id (rows, --systems, chart).  label: for humans.
    engine: "redis" or "memlog".
    durable: every acknowledged write is on disk before the reply; decides
      which Redis row a memlog row is compared with (see `baseline_for`).
    start: starts it on a port and data dir; None while not buildable.
    not_built: why it cannot run yet (its rows say "not yet built: ...").
    recovery: "measure" (restart on the same data dir and time it), or a
      sentence saying why there is nothing to measure.
    """

    name: str
    label: str
    engine: str
    durable: bool
    start: Optional[StartFn]
    not_built: Optional[str] = None
    recovery: str = "measure"


def redis_start(*persistence: str) -> StartFn:
    def start(ctx: Ctx, data_dir: Path, port: int, log: Path) -> Running:
        argv = [
            ctx.redis_server,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            # No RDB snapshots for any Redis: only the AOF setting differs.
            "--save", "",
            *persistence,
        ]
        return Running(port, data_dir, spawn(argv, log), log)

    return start


def memlog_embedded_start(ctx: Ctx, data_dir: Path, port: int, log: Path) -> Running:
    if not ctx.memlog_bin.is_file():
        raise RuntimeError(f"{ctx.memlog_bin} not found (cargo build --release -p memlog)")
    argv = [
        str(ctx.memlog_bin), "server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--data-dir", str(data_dir),
    ]
    return Running(port, data_dir, spawn(argv, log), log)


def memlog_txlog3_start(ctx: Ctx, data_dir: Path, port: int, log: Path) -> Running:
    """Three `memlog txlog` nodes (data under data_dir/n1..n3) and `memlog
    server --txlog` pointed at them. Node ports are chosen once and kept in
    data_dir/txlog-ports, so a restart (recovery) rejoins the same group."""
    if not ctx.memlog_bin.is_file():
        raise RuntimeError(f"{ctx.memlog_bin} not found (cargo build --release -p memlog)")
    ports_file = data_dir / "txlog-ports"
    if ports_file.is_file():
        ports = [int(p) for p in ports_file.read_text().split()]
    else:
        ports = [free_port() for _ in range(3)]
        ports_file.write_text(" ".join(map(str, ports)))
    init = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(ports))
    nodes = []
    for i, p in enumerate(ports):
        nodes.append(spawn([
            str(ctx.memlog_bin), "txlog",
            "--id", str(i + 1),
            "--bind", f"127.0.0.1:{p}",
            "--data-dir", str(data_dir / f"n{i + 1}"),
            "--init", init,
        ], log))
    argv = [
        str(ctx.memlog_bin), "server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--data-dir", str(data_dir / "server"),
        "--txlog", ",".join(f"127.0.0.1:{p}" for p in ports),
    ]
    return Running(port, data_dir, spawn(argv, log), log, helpers=nodes)


SYSTEMS: list[System] = [
    System("redis", "Redis, no persistence", "redis", False,
           redis_start("--appendonly", "no"),
           recovery="n/a: no persistence"),
    System("redis-everysec", "Redis, AOF appendfsync everysec", "redis", False,
           redis_start("--appendonly", "yes", "--appendfsync", "everysec")),
    System("redis-always", "Redis, AOF appendfsync always", "redis", True,
           redis_start("--appendonly", "yes", "--appendfsync", "always")),
    System("memlog", "memlog server, embedded single-node txlog", "memlog", True,
           memlog_embedded_start),
    System("memlog-txlog3", "memlog server + 3-node txlog", "memlog", True,
           memlog_txlog3_start),
]

# Which Redis row a memlog row is compared with: writes of a durable system
# against Redis fsyncing every write; everything else against no persistence.
BASELINE_DURABLE_WRITES = "redis-always"
BASELINE_OTHER = "redis"


def baseline_for(system: System, workload: "Workload") -> str:
    return BASELINE_DURABLE_WRITES if system.durable and workload.writes else BASELINE_OTHER


def wait_ready(run: Running, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Seconds until PING answers PONG (not -LOADING); raises on failure."""
    t0 = time.monotonic()
    while True:
        why = run.alive()
        if why:
            raise RuntimeError(why)
        try:
            with Resp(run.port, timeout=2) as r:
                if r.call("PING") == "PONG":
                    return time.monotonic() - t0
        except (OSError, RespError):
            pass
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"no PONG on port {run.port} within {timeout_s:.0f}s")
        time.sleep(0.01)


# ---------------------------------------------------------------------------
# Workloads (redis-benchmark)
# ---------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    args: list[str]  # redis-benchmark arguments naming the test (or command)
    writes: bool
    mixed: bool = False


WORKLOADS = [
    Workload("SET", ["-t", "set"], True),
    Workload("GET", ["-t", "get"], False),
    Workload("INCR", ["-t", "incr"], True),
    Workload("LPUSH", ["-t", "lpush"], True),
    Workload("HSET", ["-t", "hset"], True),
    Workload("ZADD", ["zadd", "myzset", "__rand_int__", "element:__rand_int__"], True),
    Workload("MIXED", [], True, mixed=True),  # 80% GET (40 clients) / 20% SET (10)
]

_SUMMARY_RE = re.compile(
    r"latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*"
    r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
)
# "inf" when a tiny run (the smoke run's small MIXED part) took under 10 ms.
_RPS_RE = re.compile(r"throughput summary:\s*([\d.]+|inf) requests per second")
_DONE_RE = re.compile(r"(\d+) requests completed in ([\d.]+) seconds")
_ERROR_RE = re.compile(r"Error from server: (.*?)(?:, with args beginning with:|$)", re.M)
_PCT_RE = re.compile(r"^([\d.]+)% <= ([\d.]+) milliseconds", re.M)


def parse_benchmark(out: str) -> dict:
    """Numbers from redis-benchmark's detailed output (one test)."""
    out = out.replace("\r", "\n")
    rps, summ, done = _RPS_RE.search(out), _SUMMARY_RE.search(out), _DONE_RE.search(out)
    if not (rps and summ and done):
        raise RuntimeError("could not parse redis-benchmark output: " + out.strip()[-200:])
    avg, mn, p50, p95, p99, mx = (float(x) for x in summ.groups())
    # The percentile table comes before the cumulative distribution.
    table = out.split("Latency by percentile distribution:", 1)[-1]
    table = table.split("Cumulative distribution of latencies:", 1)[0]
    p999 = next((float(ms) for pct, ms in _PCT_RE.findall(table) if float(pct) >= 99.9), None)
    requests, elapsed = int(done.group(1)), float(done.group(2))
    # redis-benchmark prints the elapsed time rounded to 10 ms: a run shorter
    # than that has no rate of its own; count it as 10 ms.
    rate = float(rps.group(1)) if rps.group(1) != "inf" else requests / max(elapsed, 0.01)
    return {
        "requests": requests,
        "elapsed_s": elapsed,
        "rps": rate,
        "avg_ms": avg, "min_ms": mn, "p50_ms": p50, "p95_ms": p95,
        "p99_ms": p99, "p999_ms": p999, "max_ms": mx,
    }


class Bench:
    """Runs redis-benchmark against one port."""

    def __init__(self, port: int, keyspace: int, timeout_s: float):
        self.port = port
        self.keyspace = keyspace
        self.timeout_s = timeout_s

    def argv(self, test: list[str], n: int, clients: int, pipeline: int) -> list[str]:
        return [
            "redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port),
            "-c", str(clients), "-n", str(n), "-d", str(VALUE_SIZE),
            "-r", str(self.keyspace), "-P", str(pipeline), *test,
        ]

    def run(self, workload: Workload, n: int, pipeline: int) -> dict:
        """One pass; returns parsed numbers plus "client_cpu_s"."""
        if workload.mixed:
            parts = [
                (["-t", "get"], 40, max(1, n * 4 // 5)),
                (["-t", "set"], 10, max(1, n // 5)),
            ]
        else:
            parts = [(workload.args, CLIENTS, n)]
        cpu0 = children_cpu_seconds()
        procs = [
            subprocess.Popen(self.argv(t, k, c, pipeline), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
            for t, c, k in parts
        ]
        results, errors = [], []
        for p in procs:
            try:
                out, err = p.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                for q in procs:
                    if q.poll() is None:
                        os.kill(q.pid, signal.SIGKILL)
                        q.wait()
                raise RuntimeError(f"redis-benchmark ran past {self.timeout_s:.0f}s")
            server_error = _ERROR_RE.search(err + "\n" + out)
            if server_error:
                errors.append(server_error.group(1).strip())
            elif p.returncode != 0:
                errors.append(f"redis-benchmark exited {p.returncode}: {err.strip()[-200:]}")
            else:
                results.append(parse_benchmark(out))
        client_cpu = children_cpu_seconds() - cpu0
        if errors:
            raise RuntimeError("server replied: " + errors[0])
        if len(results) == 1:
            res = results[0]
        else:
            # MIXED: all requests over the longer run; the worse percentile.
            res = {k: max(r[k] or 0.0 for r in results) for k in
                   ("avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")}
            res["requests"] = sum(r["requests"] for r in results)
            # requests / rps is each run's time at ms precision ("completed
            # in X seconds" has only 2 decimals).
            res["elapsed_s"] = max(r["requests"] / r["rps"] if r["rps"] else r["elapsed_s"]
                                   for r in results)
            res["rps"] = res["requests"] / res["elapsed_s"] if res["elapsed_s"] else 0.0
            res["parts"] = {"GET": results[0], "SET": results[1]}
        res["client_cpu_s"] = client_cpu
        return res


# ---------------------------------------------------------------------------
# The disk
# ---------------------------------------------------------------------------


def mount_of(path: Path) -> dict:
    """Mount point, file system type and device holding `path` (the
    longest mount point that is a prefix of it, from /proc/self/mountinfo)."""
    real = str(path.resolve())
    best = {"mount": "?", "fstype": "?", "device": "?"}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, post = line.split(" - ", 1)
                mnt = pre.split()[4]
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and (best["mount"] == "?" or len(mnt) >= len(best["mount"])):
                    fstype, dev = post.split()[:2]
                    best = {"mount": mnt, "fstype": fstype, "device": dev}
    except OSError:
        pass
    return best


def fdatasync_latency(directory: Path, seconds: float) -> dict:
    """4 KiB append + os.fdatasync in a loop for `seconds`; latencies in ms."""
    path = directory / "fdatasync.probe"
    block = os.urandom(4096)
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end or len(lat) < 5:
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    lat.sort()
    return {
        "dir": str(directory), **mount_of(directory), "samples": len(lat),
        "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "max_ms": lat[-1], "syncs_per_s": len(lat) / (sum(lat) / 1000),
    }


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


@dataclass
class Settings:
    smoke: bool
    seconds: float  # target length of each measured redis-benchmark run
    keys: int  # keys loaded for memory, and redis-benchmark's -r
    pipelines: list[int]
    warmup_n: int  # requests in a warm-up pass, at pipeline 1
    min_n: int
    max_n: int
    fsync_seconds: float
    txlog_clients: list[int]  # `memlog txlog bench --clients`
    txlog_seconds: int  # seconds per appender count


def settings_for(args) -> Settings:
    if args.smoke:
        return Settings(True, args.seconds or 0.2, args.keys or 2000, [1], 300, 300, 3000, 0.1,
                        [1, 64], 1)
    return Settings(False, args.seconds or 3.0, args.keys or 1_000_000, [1, 16],
                    5_000, 5_000, 5_000_000, 1.0, [1, 16, 64, 256], 5)


def bench_for(st: Settings, port: int) -> Bench:
    """redis-benchmark against `port` with this run's keyspace and timeout."""
    return Bench(port, st.keys, timeout_s=max(60.0, st.seconds * 20))


def measured_n(st: Settings, bench: Bench, workload: Workload, pipeline: int) -> int:
    """Runs the warm-up pass and returns the requests of a measured pass
    lasting about `st.seconds` at the warm-up's speed."""
    warm = bench.run(workload, st.warmup_n * pipeline, pipeline)
    if st.smoke:
        return st.min_n
    return int(min(st.max_n, max(st.min_n, warm["rps"] * st.seconds)))


def measure_system(system: System, ctx: Ctx, st: Settings, tmp: Path,
                   failed_logs: Optional[Path] = None) -> dict:
    """Every measurement of one system; never raises for the system's faults.
    If anything failed, the system's log (all its processes) is copied to
    failed_logs/NAME.log, since the data directory is removed."""
    rec: dict = {"name": system.name, "label": system.label, "engine": system.engine,
                 "durable": system.durable, "status": "ok", "results": []}
    if system.start is None:
        rec["status"] = system.not_built or "not yet built"
        rec["recovery"] = {"status": system.recovery}
        return rec
    data_dir = Path(tempfile.mkdtemp(prefix=f"{system.name}-", dir=tmp))
    log = data_dir.parent / f"{system.name}.log"
    port = free_port()
    run: Optional[Running] = None
    try:
        try:
            run = system.start(ctx, data_dir, port, log)
            rec["startup_s"] = wait_ready(run)
        except Exception as e:  # noqa: BLE001 - any failure becomes the row
            rec["status"] = f"failed: {e}"
            return rec
        rec["port"] = port

        # 1. Memory after loading the keys.
        try:
            rss0 = rss_bytes(run.server.pid)
            t0 = time.monotonic()
            load_keys(port, st.keys)
            used = info_field(port, "memory", "used_memory")
            rss = rss_bytes(run.server.pid)
            load_s = time.monotonic() - t0
            # Right after the load RSS still holds write-path buffers (the
            # embedded log's IO buffers, freed pages not yet returned), which
            # made the column swing by 30 % between runs; a second reading
            # once the server idled is the comparable one.
            time.sleep(settle_s(st.smoke))
            rss_settled = rss_bytes(run.server.pid)
            rec["memory"] = {
                "status": "ok", "keys": st.keys, "load_s": load_s,
                "rss_empty_bytes": rss0, "rss_bytes": rss, "rss_settled_bytes": rss_settled,
                "used_memory_bytes": int(used) if used and used.isdigit() else None,
            }
        except Exception as e:  # noqa: BLE001
            rec["memory"] = {"status": f"failed: {e}"}

        # 2./3. Workloads.
        bench = bench_for(st, port)
        for pipeline in st.pipelines:
            for w in WORKLOADS:
                row = {"workload": w.name, "pipeline": pipeline, "writes": w.writes}
                why = run.alive()
                if why:
                    row["status"] = f"failed: {why}"
                    rec["results"].append(row)
                    continue
                try:
                    n = measured_n(st, bench, w, pipeline)
                    cpu0 = run.cpu()
                    res = bench.run(w, n, pipeline)
                    res["server_cpu_s"] = run.cpu() - cpu0
                    row.update(status="ok", **res)
                except Exception as e:  # noqa: BLE001
                    row["status"] = f"failed: {e}"
                print(f"  {system.name:16} {w.name:6} P{pipeline:<3} "
                      + (f"{row['rps']:>12,.0f} ops/s  p99 {row['p99_ms']:.3f} ms"
                         if row["status"] == "ok" else row["status"]),
                      file=sys.stderr, flush=True)
                rec["results"].append(row)

        # 4. Recovery.
        if system.recovery != "measure":
            rec["recovery"] = {"status": system.recovery}
        else:
            try:
                with Resp(port) as r:
                    dbsize_before = r.call("DBSIZE")
                run.stop()
                run = system.start(ctx, data_dir, port, log)
                t = wait_ready(run)
                with Resp(port) as r:
                    dbsize = r.call("DBSIZE")
                rec["recovery"] = {"status": "ok", "seconds": t, "keys_before": dbsize_before,
                                   "keys_after": dbsize}
            except Exception as e:  # noqa: BLE001
                rec["recovery"] = {"status": f"failed: {e}"}
        return rec
    finally:
        if run is not None:
            run.stop()
        if failed_logs is not None and log.is_file() and _any_failure(rec):
            try:
                shutil.copy(log, failed_logs / f"{system.name}.log")
                rec["log"] = f"{system.name}.log"
            except OSError:
                pass
        shutil.rmtree(data_dir, ignore_errors=True)


def _any_failure(rec: dict) -> bool:
    parts = [rec, rec.get("memory") or {}, rec.get("recovery") or {}, *rec["results"]]
    return any(str(p.get("status", "")).startswith("failed") for p in parts)


def add_ratios(systems: list[dict], by_name: dict[str, System]) -> None:
    """ratio_rps = memlog ops/s / Redis ops/s (higher is better for memlog);
    ratio_p99 = memlog p99 / Redis p99 (lower is better for memlog)."""
    rows = {(s["name"], r["workload"], r["pipeline"]): r
            for s in systems for r in s["results"] if r.get("status") == "ok"}
    workloads = {w.name: w for w in WORKLOADS}
    for s in systems:
        if s["engine"] != "memlog":
            continue
        for r in s["results"]:
            base = baseline_for(by_name[s["name"]], workloads[r["workload"]])
            r["baseline"] = base
            b = rows.get((base, r["workload"], r["pipeline"]))
            if r.get("status") == "ok" and b:
                r["ratio_rps"] = r["rps"] / b["rps"] if b["rps"] else None
                r["ratio_p99"] = r["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None


# ---------------------------------------------------------------------------
# The issues' goals, measured in alternation
# ---------------------------------------------------------------------------


@dataclass
class GoalPair:
    """One workload run on a memlog system and its Redis baseline in turns.
    Its goals: ops/s ratio >= min_rps_ratio and, where set, p99 ratio <=
    max_p99_ratio."""

    system: str
    baseline: str
    workload: str
    pipeline: int
    min_rps_ratio: float
    max_p99_ratio: Optional[float] = None


# Issue 5's goals for the three-node log (docs/performance.md, Set-up).
GOAL_PAIRS = [
    GoalPair("memlog-txlog3", "redis-always", "SET", 1, 1.0, 1.5),
    GoalPair("memlog-txlog3", "redis-always", "SET", 16, 1.0),
    GoalPair("memlog-txlog3", "redis", "GET", 1, 0.9),
]
GOAL_ROUNDS = 3
# Idle time before the first round, in SETTLE_S units (see measure_goals).
GOAL_SETTLE_FACTOR = 2


def wait_persistence_idle(port: int, timeout_s: float) -> None:
    """Waits (up to timeout_s) until the server runs no snapshot or AOF
    rewrite, twice in a row half a second apart: the key load sets one off
    (in Redis and in memlog alike), which would otherwise run under the
    first round only."""
    end = time.monotonic() + timeout_s
    idle_in_a_row = 0
    while time.monotonic() < end and idle_in_a_row < 2:
        time.sleep(0.5)
        busy = any(info_field(port, "persistence", f) not in (None, "0")
                   for f in ("rdb_bgsave_in_progress", "aof_rewrite_in_progress",
                             "aof_rewrite_scheduled"))
        idle_in_a_row = 0 if busy else idle_in_a_row + 1


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def measure_goals(chosen: list[System], ctx: Ctx, st: Settings, tmp: Path) -> dict:
    """The goal rows again, with every system they need running at once and
    the runs alternating between memlog and its baseline (which one goes
    first alternates too), GOAL_ROUNDS times: the machine's speed drifts by
    tens of percent within minutes, which a single row per system, measured
    minutes apart, carries into its ratio. Each round's ratio compares two
    runs seconds apart; the median over rounds is the one reported."""
    names = {s.name for s in chosen}
    pairs = [g for g in GOAL_PAIRS if g.system in names and g.baseline in names]
    rec: dict = {"status": "ok", "rounds": 1 if st.smoke else GOAL_ROUNDS, "pairs": []}
    if not pairs:
        return {**rec, "status": "skipped: the systems they compare were not chosen"}
    by_name = {s.name: s for s in chosen}
    runs: dict[str, Running] = {}
    try:
        for name in dict.fromkeys(n for g in pairs for n in (g.system, g.baseline)):
            system = by_name[name]
            if system.start is None:
                return {**rec, "status": f"skipped: {name} not built"}
            data_dir = Path(tempfile.mkdtemp(prefix=f"goals-{name}-", dir=tmp))
            run = system.start(ctx, data_dir, free_port(), data_dir.parent / f"goals-{name}.log")
            runs[name] = run
            wait_ready(run)
            # GET reads the keys redis-benchmark's -r names, as in the main rows.
            load_keys(run.port, st.keys)
            wait_persistence_idle(run.port, 0.2 if st.smoke else 120.0)
        # After memlog's snapshot its log is trimmed, and the txlog nodes'
        # purge of what the load wrote (hundreds of MB: segments freed in
        # steps, the state machine's references) goes on for seconds. By
        # hand, 3-node SET at pipeline 1 right after the load's snapshot:
        # p99 3.44 ms; 12 s later 1.80 ms.
        time.sleep(settle_s(st.smoke) * GOAL_SETTLE_FACTOR)
        workloads = {w.name: w for w in WORKLOADS}
        benches = {name: bench_for(st, run.port) for name, run in runs.items()}
        for g in pairs:
            w = workloads[g.workload]
            sized = {name: measured_n(st, benches[name], w, g.pipeline)
                     for name in (g.system, g.baseline)}
            rounds = []
            for i in range(rec["rounds"]):
                order = (g.system, g.baseline) if i % 2 == 0 else (g.baseline, g.system)
                got = {}
                for name in order:
                    why = runs[name].alive()
                    if why:
                        raise RuntimeError(why)
                    r = benches[name].run(w, sized[name], g.pipeline)
                    got[name] = {"rps": r["rps"], "p99_ms": r["p99_ms"]}
                m, b = got[g.system], got[g.baseline]
                rounds.append({
                    "memlog": m, "baseline": b,
                    "ratio_rps": m["rps"] / b["rps"] if b["rps"] else None,
                    "ratio_p99": m["p99_ms"] / b["p99_ms"] if b["p99_ms"] else None,
                })
                print(f"  goals {g.system} vs {g.baseline} {g.workload} P{g.pipeline} "
                      f"round {i + 1}: {_f(rounds[-1]['ratio_rps'], '{:.2f}')}x ops/s, "
                      f"p99 {_f(rounds[-1]['ratio_p99'], '{:.2f}')}x", file=sys.stderr, flush=True)
            rps = [r["ratio_rps"] for r in rounds if r["ratio_rps"] is not None]
            p99 = [r["ratio_p99"] for r in rounds if r["ratio_p99"] is not None]
            rec["pairs"].append({
                "system": g.system, "baseline": g.baseline, "workload": g.workload,
                "pipeline": g.pipeline, "min_rps_ratio": g.min_rps_ratio,
                "max_p99_ratio": g.max_p99_ratio, "rounds": rounds,
                "median_ratio_rps": _median(rps) if rps else None,
                "median_ratio_p99": _median(p99) if p99 else None,
            })
        return rec
    except Exception as e:  # noqa: BLE001 - becomes the section's status
        return {**rec, "status": f"failed: {e}"}
    finally:
        for run in runs.values():
            run.stop()
            shutil.rmtree(run.data_dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# The transaction log on its own (memlog txlog bench)
# ---------------------------------------------------------------------------

TXLOG_SYSTEM = "txlog"
_TXLOG_ROW_RE = re.compile(
    r"appenders=(\d+)\s+appends/s=\s*([\d.]+) p50=(\d+)us p99=(\d+)us p999=(\d+)us "
    r"errors=(\d+) appends/request=([\d.]+)")
_TXLOG_FSYNC_RE = re.compile(r"^fdatasync 4KiB \(.*\): p50=(\d+)us p99=(\d+)us", re.M)
_TXLOG_FSYNC_AFTER_RE = re.compile(r"^fdatasync 4KiB again after the run: p50=(\d+)us", re.M)
_TXLOG_FSYNC_OVER_RE = re.compile(r"^fdatasync 4KiB overwriting .*: p50=(\d+)us p99=(\d+)us", re.M)


def measure_txlog(ctx: Ctx, st: Settings, tmp: Path) -> dict:
    """Three txlog nodes under tmp/txlog and `memlog txlog bench` against
    them; the nodes are stopped by PID afterwards."""
    rec: dict = {"status": "ok", "rows": []}
    if not ctx.memlog_bin.is_file():
        return {"status": f"not yet built: {ctx.memlog_bin} not found", "rows": []}
    data_dir = tmp / "txlog"
    data_dir.mkdir()
    log = data_dir / "txlog.log"
    ports = [free_port() for _ in range(3)]
    addrs = ",".join(f"127.0.0.1:{p}" for p in ports)
    init = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(ports))
    nodes = []
    try:
        for i, p in enumerate(ports):
            nodes.append(spawn([
                str(ctx.memlog_bin), "txlog", "--id", str(i + 1), "--bind", f"127.0.0.1:{p}",
                "--data-dir", str(data_dir / f"n{i + 1}"), "--init", init,
            ], log))
        # `status` retries until a leader is elected.
        subprocess.run([str(ctx.memlog_bin), "txlog", "status", "--addr", addrs],
                       check=True, capture_output=True, timeout=60)
        shown = ["--clients", ",".join(map(str, st.txlog_clients)), "--payload", str(VALUE_SIZE),
                 "--seconds", str(st.txlog_seconds)]
        argv = [str(ctx.memlog_bin), "txlog", "bench", "--addr", addrs, *shown,
                "--fsync-dir", str(data_dir)]
        rec["command"] = "memlog txlog bench " + " ".join(shown)
        timeout = 120 + 2 * st.txlog_seconds * len(st.txlog_clients)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            return {**rec, "status": f"failed: {p.stderr.strip()[-300:]}"}
        for m in _TXLOG_ROW_RE.finditer(p.stdout):
            rec["rows"].append({
                "appenders": int(m[1]), "appends_per_s": float(m[2]), "p50_ms": int(m[3]) / 1e3,
                "p99_ms": int(m[4]) / 1e3, "p999_ms": int(m[5]) / 1e3, "errors": int(m[6]),
                "appends_per_request": float(m[7])})
        fs = _TXLOG_FSYNC_RE.search(p.stdout)
        fs_after = _TXLOG_FSYNC_AFTER_RE.search(p.stdout)
        if not rec["rows"] or not fs:
            return {**rec, "status": f"failed: unexpected output: {p.stdout.strip()[-300:]}"}
        rec["fdatasync_p50_ms"] = int(fs[1]) / 1e3
        rec["fdatasync_p99_ms"] = int(fs[2]) / 1e3
        rec["fdatasync_after_p50_ms"] = int(fs_after[1]) / 1e3 if fs_after else None
        fs_over = _TXLOG_FSYNC_OVER_RE.search(p.stdout)
        rec["fdatasync_overwrite_p50_ms"] = int(fs_over[1]) / 1e3 if fs_over else None
        by = {r["appenders"]: r for r in rec["rows"]}
        if 1 in by and 64 in by and by[1]["appends_per_s"]:
            rec["ratio_64_to_1"] = by[64]["appends_per_s"] / by[1]["appends_per_s"]
        if 1 in by and rec["fdatasync_p50_ms"]:
            rec["ratio_p50_to_fdatasync"] = by[1]["p50_ms"] / rec["fdatasync_p50_ms"]
        if 1 in by and rec["fdatasync_overwrite_p50_ms"]:
            rec["ratio_p50_to_fdatasync_overwrite"] = (
                by[1]["p50_ms"] / rec["fdatasync_overwrite_p50_ms"])
        # The p50 goal again, each single-appender run right after its own
        # fdatasync probe (the disk's speed drifts as much as the ratio's
        # margin within a run).
        rec["p50_rounds"] = []
        for _ in range(1 if st.smoke else GOAL_ROUNDS):
            one = [str(ctx.memlog_bin), "txlog", "bench", "--addr", addrs, "--clients", "1",
                   "--payload", str(VALUE_SIZE), "--seconds", str(st.txlog_seconds),
                   "--fsync-dir", str(data_dir)]
            q = subprocess.run(one, capture_output=True, text=True,
                               timeout=120 + 2 * st.txlog_seconds)
            row, fs = _TXLOG_ROW_RE.search(q.stdout), _TXLOG_FSYNC_RE.search(q.stdout)
            if q.returncode != 0 or not row or not fs:
                return {**rec, "status": f"failed: p50 round: {(q.stderr or q.stdout).strip()[-300:]}"}
            p50, fsync = int(row[3]) / 1e3, int(fs[1]) / 1e3
            rec["p50_rounds"].append({"p50_ms": p50, "fdatasync_p50_ms": fsync,
                                      "ratio": p50 / fsync if fsync else None})
        ratios = [r["ratio"] for r in rec["p50_rounds"] if r["ratio"] is not None]
        rec["median_ratio_p50_to_fdatasync"] = _median(ratios) if ratios else None
        return rec
    except (OSError, subprocess.SubprocessError) as e:
        return {**rec, "status": f"failed: {e}: {log_tail(log)}"}
    finally:
        for n in nodes:
            stop(n)


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


def _f(x, fmt: str = "{:.3f}", none: str = "n/a") -> str:
    return none if x is None else fmt.format(x)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def settle_s(smoke: bool) -> float:
    """Idle time before the second RSS reading (short in a smoke run)."""
    return 0.2 if smoke else SETTLE_S


def _mib(b) -> str:
    return _f(b / 2**20 if b is not None else None, "{:,.1f}")


def markdown(report: dict) -> str:
    m, st = report["meta"], report["settings"]
    out = [
        "# memlog vs Redis: latest results", "",
        f"- Run: {m['date']} ({'smoke run: numbers are not meaningful' if st['smoke'] else 'full run'}), "
        f"{m['wall_s']:.0f} s wall",
        f"- Machine: {m['cpus']} CPU cores ({m['cpu_model']}), {m['kernel']}",
        f"- {m['redis_version']}; memlog {m['memlog_commit']}; client {m['benchmark_version']}",
        f"- redis-benchmark: {CLIENTS} clients, -d {VALUE_SIZE}, -r {st['keys']}, pipelines "
        f"{', '.join(map(str, st['pipelines']))}; each run sized to about {st['seconds']} s after a warm-up; "
        "MIXED = 80% GET (40 clients) + 20% SET (10 clients) concurrently",
        f"- On {m['cpus']} cores the client (redis-benchmark) competes with the server for CPU: "
        "compare the server and client CPU columns with the run time.",
        "",
        "## Disk", "",
        "| fs | device | 4 KiB write+fdatasync p50 | p99 | max | syncs/s |",
        "|---|---|---|---|---|---|",
    ]
    d = report["fdatasync"]
    out.append(f"| {d['fstype']} on {d['mount']} | {d['device']} | {d['p50_ms']:.3f} ms | "
               f"{d['p99_ms']:.3f} ms | {d['max_ms']:.3f} ms | {d['syncs_per_s']:,.0f} |")
    out += ["", "## Throughput and latency", "",
            "Ratios compare each memlog row with the matching Redis row (`vs`): ops/s ratio > 1 "
            "and p99 ratio < 1 favour memlog. Durable memlog systems' writes are compared with "
            "`redis-always`, everything else with `redis` (no persistence).", "",
            "| system | workload | pipeline | ops/s | p50 ms | p99 ms | p99.9 ms | server CPU s "
            "| client CPU s | vs | ops/s ratio | p99 ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    failed_logs_note: list[str] = []
    for s in report["systems"]:
        if s.get("log"):
            failed_logs_note.append(f"- {s['name']}: something failed; its log is `{s['log']}` "
                                    "beside this file.")
        if not s["results"]:
            out.append(f"| {s['name']} | all | | {_cell(s['status'])} | | | | | | | | |")
            continue
        for r in s["results"]:
            base = r.get("baseline", "")
            ratios = (f"{_f(r.get('ratio_rps'), '{:.2f}×')} | {_f(r.get('ratio_p99'), '{:.2f}×')}"
                      if base else " | ")
            if r["status"] != "ok":
                out.append(f"| {s['name']} | {r['workload']} | {r['pipeline']} | {_cell(r['status'])} "
                           f"| | | | | | {base} | {ratios} |")
                continue
            out.append(
                f"| {s['name']} | {r['workload']} | {r['pipeline']} | {r['rps']:,.0f} | "
                f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {_f(r['p999_ms'])} | "
                f"{r['server_cpu_s']:.2f} | {r['client_cpu_s']:.2f} | {base} | {ratios} |")
    if failed_logs_note:
        out += [""] + failed_logs_note
    out += ["", f"## Memory after loading {st['keys']:,} keys of {VALUE_SIZE} bytes", "",
            f"| system | RSS MiB | RSS MiB after {settle_s(st['smoke']):g} s idle | used_memory MiB "
            "| RSS bytes/key (idle) | load s |",
            "|---|---:|---:|---:|---:|---:|"]
    for s in report["systems"]:
        mem = s.get("memory")
        if not mem or mem["status"] != "ok":
            out.append(f"| {s['name']} | {_cell((mem or {}).get('status', s['status']))} | | | | |")
            continue
        settled = mem.get("rss_settled_bytes")
        per_key = ((settled or mem["rss_bytes"]) - (mem["rss_empty_bytes"] or 0)) / mem["keys"] \
            if mem["rss_bytes"] else None
        out.append(f"| {s['name']} | {_mib(mem['rss_bytes'])} | {_mib(settled) if settled else 'n/a'} | "
                   f"{_mib(mem['used_memory_bytes']) if mem['used_memory_bytes'] else 'n/a (no INFO used_memory)'} | "
                   f"{_f(per_key, '{:,.0f}')} | {mem['load_s']:.2f} |")
    out += ["", "## Recovery (restart on the same data directory: start to first reply)", "",
            "| system | seconds | keys before → after |", "|---|---:|---|"]
    for s in report["systems"]:
        rc = s.get("recovery") or {"status": s["status"]}
        if rc["status"] == "ok":
            out.append(f"| {s['name']} | {rc['seconds']:.2f} | "
                       f"{rc['keys_before']:,} → {rc['keys_after']:,} |")
        else:
            out.append(f"| {s['name']} | {_cell(rc['status'])} | |")
    goals = report.get("goals")
    if goals is not None:
        out += ["", "## Goals, measured in alternation", ""]
        if goals["status"] != "ok":
            out.append(_cell(goals["status"]))
        else:
            out += [f"The rows the goals name, again: every system running at once, the runs "
                    f"alternating between memlog and its baseline, rounds: {goals['rounds']}; "
                    "each round's ratio compares two runs seconds apart, and the median is the "
                    "one to read.", "",
                    "| system | workload | pipeline | vs | ops/s ratio per round | median "
                    "| goal | p99 ratio per round | median | goal |",
                    "|---|---|---:|---|---|---:|---|---|---:|---|"]
            for g in goals["pairs"]:
                rps = ", ".join(_f(r["ratio_rps"], "{:.2f}") for r in g["rounds"])
                p99 = ", ".join(_f(r["ratio_p99"], "{:.2f}") for r in g["rounds"])
                mr, mp = g["median_ratio_rps"], g["median_ratio_p99"]
                rps_goal = f"≥ {g['min_rps_ratio']:g}: " + (
                    "met" if mr is not None and mr >= g["min_rps_ratio"] else "not met")
                p99_goal = "" if g["max_p99_ratio"] is None else (
                    f"≤ {g['max_p99_ratio']:g}: "
                    + ("met" if mp is not None and mp <= g["max_p99_ratio"] else "not met"))
                out.append(f"| {g['system']} | {g['workload']} | {g['pipeline']} | "
                           f"{g['baseline']} | {rps} | {_f(mr, '{:.2f}×')} | {rps_goal} | "
                           f"{p99} | {_f(mp, '{:.2f}×')} | {p99_goal} |")
    tx = report.get("txlog")
    if tx is not None:
        out += ["", "## Transaction log alone (3 nodes, `memlog txlog bench`)", ""]
        if tx["status"] != "ok":
            out.append(f"{_cell(tx['status'])}")
        else:
            out += [f"`{tx['command']}`; fdatasync of 4 KiB on the nodes' disk in the same run: "
                    f"p50 {tx['fdatasync_p50_ms']:.3f} ms, p99 {tx['fdatasync_p99_ms']:.3f} ms"
                    + (f" (p50 {tx['fdatasync_after_p50_ms']:.3f} ms after the run)"
                       if tx.get("fdatasync_after_p50_ms") is not None else "")
                    + (f"; overwriting blocks the file has (as the log's preallocated "
                       f"segments do): p50 {tx['fdatasync_overwrite_p50_ms']:.3f} ms"
                       if tx.get("fdatasync_overwrite_p50_ms") is not None else "") + ".", "",
                    "| appenders | appends/s | p50 ms | p99 ms | p99.9 ms | appends/request | errors |",
                    "|---:|---:|---:|---:|---:|---:|---:|"]
            for r in tx["rows"]:
                out.append(f"| {r['appenders']} | {r['appends_per_s']:,.0f} | {r['p50_ms']:.3f} | "
                           f"{r['p99_ms']:.3f} | {r['p999_ms']:.3f} | "
                           f"{r['appends_per_request']:.1f} | {r['errors']} |")
            out += ["",
                    f"- throughput(64) / throughput(1) = {_f(tx.get('ratio_64_to_1'), '{:.1f}')} "
                    "(goal ≥ 30: group commit)",
                    f"- p50(1 appender) / p50(fdatasync) = "
                    f"{_f(tx.get('ratio_p50_to_fdatasync'), '{:.2f}')} (goal ≤ 3); against "
                    f"the overwriting fdatasync: "
                    f"{_f(tx.get('ratio_p50_to_fdatasync_overwrite'), '{:.2f}')}"]
            rounds = tx.get("p50_rounds") or []
            if rounds:
                out.append(
                    f"- the same again, single-appender runs (`--clients 1`): {len(rounds)}, each "
                    "against the fdatasync probed just before it: "
                    + ", ".join(f"{r['p50_ms']:.3f} / {r['fdatasync_p50_ms']:.3f} = "
                                f"{_f(r['ratio'], '{:.2f}')}" for r in rounds)
                    + f"; median {_f(tx.get('median_ratio_p50_to_fdatasync'), '{:.2f}')} (goal ≤ 3)")
    out += ["", "Raw numbers: `latest.json`; chart: `latest.png`.", ""]
    return "\n".join(out)


def chart(report: dict, out_dir: Path) -> Optional[str]:
    """latest.png via gnuplot; returns why not if it could not be drawn."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not installed"
    systems = [s for s in report["systems"] if any(r.get("status") == "ok" for r in s["results"])]
    if not systems:
        return "no measured rows"
    pipelines = report["settings"]["pipelines"]
    work = Path(tempfile.mkdtemp(prefix="chart-"))
    try:
        for p in pipelines:
            for metric, scale in (("rps", 1e-3), ("p99_ms", 1.0)):
                lines = ["workload " + " ".join(s["name"] for s in systems)]
                for w in WORKLOADS:
                    vals = []
                    for s in systems:
                        r = next((r for r in s["results"] if r["workload"] == w.name
                                  and r["pipeline"] == p and r.get("status") == "ok"), None)
                        vals.append(f"{r[metric] * scale:.4f}" if r else "?")
                    lines.append(w.name + " " + " ".join(vals))
                (work / f"{metric}-{p}.dat").write_text("\n".join(lines) + "\n")
        ncol = len(systems) + 1
        plots = []
        for p in pipelines:
            for metric, title in (("rps", "throughput, kops/s (higher is better)"),
                                  ("p99_ms", "p99 latency, ms (lower is better)")):
                plots.append(
                    f"set title '{title}, pipeline {p}'\n"
                    f"plot for [i=2:{ncol}] '{work}/{metric}-{p}.dat' using i:xtic(1) title columnheader(i)\n")
        script = (
            f"set terminal pngcairo size 1400,{420 * len(pipelines)} font 'sans,10'\n"
            f"set output '{out_dir / 'latest.png'}'\n"
            "set datafile missing '?'\n"
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
            "set key top left horizontal font ',8'\nset grid ytics\nset yrange [0:*]\n"
            # Headroom above the tallest bar for the key.
            "set offsets 0, 0, graph 0.15, 0\n"
            f"set multiplot layout {len(pipelines)},2 title "
            f"'memlog vs Redis ({'SMOKE RUN, not meaningful, ' if report['settings']['smoke'] else ''}"
            f"{report['meta']['cpus']} cores, {report['meta']['date']}; "
            "no bar: failed or not yet built, see latest.md)'\n"
            + "".join(plots) + "unset multiplot\n"
        )
        (work / "chart.gp").write_text(script)
        p = subprocess.run([gnuplot, str(work / "chart.gp")], capture_output=True, text=True)
        if p.returncode != 0:
            return f"gnuplot failed: {p.stderr.strip()[-300:]}"
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_outputs(report: dict, out: Path) -> int:
    """latest.png, latest.md (also on stdout) and latest.json in `out`."""
    why_no_chart = chart(report, out)
    report["chart"] = why_no_chart or "latest.png"
    md = markdown(report)
    if why_no_chart:
        md += f"\nChart not drawn: {why_no_chart}.\n"
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "latest.md").write_text(md)
    print(md)
    print(f"bench: wrote {out}/latest.{{md,json}}" + ("" if why_no_chart else ",png"),
          file=sys.stderr)
    return 0


def meta(ctx: Ctx) -> dict:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=REPO,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    model = "?"
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                     if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": os.cpu_count(), "cpu_model": model,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "redis_version": cmd(ctx.redis_server, "--version").split(" sha=")[0],
        "benchmark_version": cmd("redis-benchmark", "--version"),
        "memlog_commit": cmd("git", "rev-parse", "--short", "HEAD")
        + ("+dirty" if cmd("git", "status", "--porcelain", "--untracked-files=no") else ""),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny run (a few seconds, pipeline 1); no assertions on numbers")
    ap.add_argument("--systems", help="comma-separated names (default all): "
                    + ",".join([*(s.name for s in SYSTEMS), TXLOG_SYSTEM]))
    ap.add_argument("--seconds", type=float,
                    help="target seconds per measured workload run (default 3; smoke 0.2)")
    ap.add_argument("--keys", type=int, help="keys to load (default 1000000; smoke 2000)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--memlog-bin", type=Path, default=REPO / "target" / "release" / "memlog")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()),
                    help="where data directories go (its disk is the one measured)")
    ap.add_argument("--from-json", type=Path, metavar="JSON",
                    help="measure nothing: redraw the table and chart from a latest.json")
    args = ap.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        return write_outputs(report, args.out)

    by_name = {s.name: s for s in SYSTEMS}
    chosen = SYSTEMS
    run_txlog = True
    if args.systems:
        names = [n.strip() for n in args.systems.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name and n != TXLOG_SYSTEM]
        if unknown:
            ap.error(f"unknown systems {unknown}; known: {[*by_name, TXLOG_SYSTEM]}")
        chosen = [by_name[n] for n in names if n != TXLOG_SYSTEM]
        run_txlog = TXLOG_SYSTEM in names
    if not shutil.which("redis-benchmark"):
        print("redis-benchmark not found (apt-get install redis-tools)", file=sys.stderr)
        return 2
    st = settings_for(args)
    ctx = Ctx(memlog_bin=args.memlog_bin.resolve(),
              redis_server=shutil.which(args.redis_server) or args.redis_server)
    args.out.mkdir(parents=True, exist_ok=True)
    for s in SYSTEMS:  # logs of an earlier run's failures
        (args.out / f"{s.name}.log").unlink(missing_ok=True)

    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="memlog-bench-", dir=args.tmp))
    try:
        print(f"bench: {'smoke' if st.smoke else 'full'} run, data under {tmp}", file=sys.stderr)
        fsync = fdatasync_latency(tmp, st.fsync_seconds)
        systems = []
        for s in chosen:
            print(f"bench: {s.name} ({s.label})", file=sys.stderr, flush=True)
            systems.append(measure_system(s, ctx, st, tmp, failed_logs=args.out))
            if systems[-1]["status"] != "ok":
                print(f"  {systems[-1]['status']}", file=sys.stderr)
        print("bench: goals (their rows again, in alternation)", file=sys.stderr, flush=True)
        goals = measure_goals(chosen, ctx, st, tmp)
        if goals["status"] != "ok":
            print(f"  {goals['status']}", file=sys.stderr)
        txlog = None
        if run_txlog:
            print(f"bench: {TXLOG_SYSTEM} (3-node transaction log, memlog txlog bench)",
                  file=sys.stderr, flush=True)
            txlog = measure_txlog(ctx, st, tmp)
            if txlog["status"] != "ok":
                print(f"  {txlog['status']}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    add_ratios(systems, by_name)
    report = {
        "meta": {**meta(ctx), "wall_s": time.monotonic() - t0},
        "settings": {"smoke": st.smoke, "seconds": st.seconds, "keys": st.keys,
                     "pipelines": st.pipelines, "clients": CLIENTS, "value_size": VALUE_SIZE},
        "fdatasync": fsync,
        "systems": systems,
        "goals": goals,
        "txlog": txlog,
    }
    write_outputs(report, args.out)
    if st.smoke:
        # Redis is the reference: if it fails, the harness is what broke.
        broken = [f"{s['name']}: {s['status']}" for s in systems
                  if s["engine"] == "redis" and s["status"] != "ok"]
        broken += [f"{s['name']} {r['workload']}: {r['status']}" for s in systems
                   if s["engine"] == "redis" for r in s["results"] if r["status"] != "ok"]
        if broken:
            print("bench: smoke run failed on Redis:\n  " + "\n  ".join(broken), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
