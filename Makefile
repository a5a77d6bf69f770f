# memlog: the commands. `make run` and `make test` work on a fresh Debian machine
# with Rust stable and root; everything else they need they install themselves.

CARGO ?= cargo
PORT ?= 6379
DATA_DIR ?= ./data
APT_PACKAGES := redis-server redis-tools

.PHONY: run build release test test-deps fmt lint bench bench-deps clean compat

run: release
	./target/release/memlog server --bind 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

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

clean:
	$(CARGO) clean
