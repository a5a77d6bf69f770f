# memlog: the commands. `make run` and `make test` work on a fresh Debian machine
# with Rust stable and root; everything else they need they install themselves.

CARGO ?= cargo
PORT ?= 6379
DATA_DIR ?= ./data
APT_PACKAGES := redis-server redis-tools

.PHONY: run build release test test-deps fmt lint bench bench-deps bench-txlog clean compat jepsen cluster cluster-stop

# Durable by default: a single-node transaction log runs inside the server on
# $(DATA_DIR)/txlog, so the data survives a restart.
run: release
	./target/release/memlog server --bind 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

# Three `memlog txlog` nodes and one `memlog server --txlog` on 127.0.0.1, data
# under $(CLUSTER_DIR), PIDs in $(CLUSTER_DIR)/pids (`make cluster-stop` kills
# exactly those). Running it again on existing data restarts the same cluster.
CLUSTER_DIR ?= ./cluster-data
CLUSTER_TXLOG_PORT ?= 17401
MEMLOG ?= ./target/release/memlog
cluster: release
	@set -e; mkdir -p $(CLUSTER_DIR); \
	if [ -s $(CLUSTER_DIR)/pids ]; then echo "$(CLUSTER_DIR)/pids exists: make cluster-stop first"; exit 1; fi; \
	p1=$(CLUSTER_TXLOG_PORT); p2=$$((p1+1)); p3=$$((p1+2)); \
	addrs="127.0.0.1:$$p1,127.0.0.1:$$p2,127.0.0.1:$$p3"; \
	init="1=127.0.0.1:$$p1,2=127.0.0.1:$$p2,3=127.0.0.1:$$p3"; i=0; \
	for p in $$p1 $$p2 $$p3; do i=$$((i+1)); \
	  nohup $(MEMLOG) txlog --id $$i --bind 127.0.0.1:$$p \
	    --data-dir $(CLUSTER_DIR)/n$$i --init $$init > $(CLUSTER_DIR)/n$$i.log 2>&1 & \
	  echo $$! >> $(CLUSTER_DIR)/pids; \
	done; \
	nohup $(MEMLOG) server --bind 127.0.0.1 --port $(PORT) \
	  --data-dir $(CLUSTER_DIR)/server --txlog $$addrs --log shard-0 \
	  > $(CLUSTER_DIR)/server.log 2>&1 & \
	echo $$! >> $(CLUSTER_DIR)/pids; \
	echo "txlog nodes on $$addrs, server on 127.0.0.1:$(PORT) (logs and data in $(CLUSTER_DIR))"; \
	echo "connect: redis-cli -p $(PORT)    stop: make cluster-stop"

cluster-stop:
	@if [ -f $(CLUSTER_DIR)/pids ]; then \
	  for p in $$(cat $(CLUSTER_DIR)/pids); do kill $$p 2>/dev/null || true; done; \
	  rm -f $(CLUSTER_DIR)/pids; echo "stopped"; \
	else echo "no $(CLUSTER_DIR)/pids: nothing to stop"; fi

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p memlog

# Idempotent: installs only what is missing.
test-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v cargo-nextest >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest

test: test-deps
	$(CARGO) build --workspace --bins
	$(CARGO) nextest run --workspace --no-fail-fast
	python3 bench/run.py --smoke --memlog-bin target/debug/memlog --out $$(mktemp -d)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The official Redis 7.0 Tcl suite against memlog (downloads Debian's redis
# source package once into REDIS_SRC).
REDIS_SRC ?= $(HOME)/.cache/memlog/redis-7.0-src
compat: release
	scripts/fetch-redis-suite.sh $(REDIS_SRC)
	scripts/compat.sh $(REDIS_SRC)

# memlog against Redis on this machine (about 10 minutes): a table on stdout and
# in bench/results/latest.{md,json,png}. See docs/performance.md.
# BENCH_ARGS passes options to bench/run.py, e.g. BENCH_ARGS="--seconds 2".
BENCH_ARGS ?=
bench: release bench-deps
	python3 bench/run.py $(BENCH_ARGS)

# Idempotent: installs only what is missing (gnuplot-nox is Debian's gnuplot
# without X11/Qt; any installed gnuplot will do).
bench-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v gnuplot >/dev/null 2>&1 || missing="$$missing gnuplot-nox"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Transaction log bench: a 3-node cluster on loopback (data under ./target, the
# same disk the fdatasync probe measures), `memlog txlog bench` against it,
# then the nodes are stopped by PID.
TXLOG_BENCH_PORT ?= 17301
TXLOG_BENCH_CLIENTS ?= 1,16,64,256
TXLOG_BENCH_SECONDS ?= 5
TXLOG_BENCH_MODE ?= pipeline
bench-txlog: release
	@set -e; dir=$$(mktemp -d $(CURDIR)/target/txlog-bench.XXXXXX); pids=""; \
	trap 'for p in $$pids; do kill $$p 2>/dev/null || true; done; wait 2>/dev/null; rm -rf $$dir' EXIT INT TERM; \
	p1=$(TXLOG_BENCH_PORT); p2=$$((p1+1)); p3=$$((p1+2)); \
	addrs="127.0.0.1:$$p1,127.0.0.1:$$p2,127.0.0.1:$$p3"; \
	init="1=127.0.0.1:$$p1,2=127.0.0.1:$$p2,3=127.0.0.1:$$p3"; i=0; \
	for p in $$p1 $$p2 $$p3; do i=$$((i+1)); \
	  ./target/release/memlog txlog --id $$i --bind 127.0.0.1:$$p --data-dir $$dir/n$$i \
	    --init $$init > $$dir/n$$i.log 2>&1 & pids="$$pids $$!"; \
	done; \
	./target/release/memlog txlog status --addr $$addrs > /dev/null; \
	./target/release/memlog txlog bench --addr $$addrs --clients $(TXLOG_BENCH_CLIENTS) \
	  --payload 256 --seconds $(TXLOG_BENCH_SECONDS) --mode $(TXLOG_BENCH_MODE) --fsync-dir $$dir

# Jepsen-style campaign (docs/jepsen.md): random seeds and nemesis mixes for
# TIME seconds (default 600), RUN_TIME seconds each; SEEDS="1 2 3" for fixed
# seeds, MODE=cluster for txlog + server, MIXES= for the nemesis mixes. Ends
# with a table of runs; exits 1 if any run found a violation.
TIME ?= 600
jepsen:
	$(CARGO) build -p memlog -p memlog-tests --bins
	TIME=$(TIME) scripts/jepsen-campaign.sh

clean:
	$(CARGO) clean
