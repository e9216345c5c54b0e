# zkd — a ZooKeeper-compatible coordination server. libc only.
CROSS_COMPILE ?=
CC      ?= $(CROSS_COMPILE)cc
ifeq ($(origin CC),default)
CC      := $(CROSS_COMPILE)cc
endif
CFLAGS  ?= -O2 -g
LDFLAGS ?=
PREFIX  ?= /usr/local
DESTDIR ?=
WERROR  ?= 0
SANITIZE ?=
# STATIC=1: a static binary without the host name resolver (embedded; smallest RSS)
STATIC  ?= 0

WARN := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Wvla -Wpointer-arith -Wcast-qual \
        -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
ifneq ($(SANITIZE),)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ifeq ($(STATIC),1)
STATICFLAGS := -DZKD_NO_RESOLVER
STATICLD    := -static
endif
ALL_CFLAGS  = $(WARN) $(CFLAGS) $(SANFLAGS) $(STATICFLAGS) -I. -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS) $(STATICLD)

LIB_SRC := $(wildcard net/*.c zab/*.c tree/*.c wal/*.c snap/*.c)
BUILD   ?= build
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Helpers shared by the unit tests (tree dumps, txn builders), linked into each of them.
UNIT_SUPPORT := $(wildcard tests/unit/support/*.c)
UNIT_SUPPORT_OBJ := $(UNIT_SUPPORT:%.c=$(BUILD)/%.o)

.PHONY: all run test test-long unit integration deps clean install bench fuzz fuzz-run fuzz-check \
        diff diff-long ensemble-long
all: zkd

zkd: $(BUILD)/server.o $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ) $(UNIT_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) $(UNIT_SUPPORT_OBJ) $(ALL_LDFLAGS) -lcriterion

# `make run`: build and start on the embedded default (clientPort 2181, dataDir ./data).
run: zkd
	./zkd

# `make test`: install test dependencies from Debian when missing, build strictly, run everything.
test: deps
	$(MAKE) fuzz-check
	$(MAKE) WERROR=1 unit-run
	$(MAKE) WERROR=1 integration
	$(MAKE) WERROR=1 diff
	$(MAKE) WERROR=1 BUILD=build-san SANITIZE=address,undefined CFLAGS="-O1 -g" zkd-san unit-run-san
	$(MAKE) WERROR=1 BUILD=build-san SANITIZE=address,undefined CFLAGS="-O1 -g" integration-san

deps:
	@sh tests/deps.sh

unit: $(UNIT_BIN)
unit-run: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/unit/lsan.supp $$t --jobs 2; done

integration: zkd $(BUILD)/elect_main
	ZKD_BIN=$(CURDIR)/zkd ELECT_BIN=$(CURDIR)/$(BUILD)/elect_main \
	/usr/bin/python3 -m pytest -q tests/integration

# The election driver alone in a loop (tests/integration/test_election.py).
$(BUILD)/elect_main: tests/integration/elect_main.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) $(ALL_LDFLAGS)

# Sanitizer builds write the server to zkd-san so the release binary is untouched.
zkd-san: $(BUILD)/server.o $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS)
unit-run-san: unit-run
integration-san: zkd-san $(BUILD)/elect_main
	ZKD_BIN=$(CURDIR)/zkd-san ELECT_BIN=$(CURDIR)/$(BUILD)/elect_main \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	/usr/bin/python3 -m pytest -q tests/integration

# libFuzzer harnesses (clang + libclang-rt-14-dev), see tests/fuzz/README.md.
fuzz:
	sh tests/fuzz/build.sh
fuzz-run: fuzz
	nice -n 19 sh tests/fuzz/run.sh $(or $(FUZZ_SECONDS),60)
# Deterministic: every seed and every regression input once, leak checks and strict
# contracts on. Part of `make test`.
fuzz-check: fuzz
	@set -e; for f in tests/fuzz/fuzz_*.c; do n=$$(basename $$f .c | sed 's/^fuzz_//'); \
	  regs=$$(ls tests/fuzz/regressions/$$n-* 2>/dev/null || true); \
	  for inputs in tests/fuzz/corpus/$$n "$$regs"; do \
	    [ -n "$$inputs" ] || continue; \
	    if ! ZKD_FUZZ_STRICT=1 ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz_$$n -runs=0 $$inputs \
	        > build-fuzz/check-$$n.log 2>&1; then \
	      tail -40 build-fuzz/check-$$n.log; echo "fuzz_$$n FAILED on $$inputs"; exit 1; fi; \
	  done; echo "fuzz_$$n: seeds and regressions pass"; \
	done

# Differential test against Apache ZooKeeper (tests/diff/README.md): the tester's self-test,
# then SEEDS seeds (default 300) of random ops; `make diff SEED=n` replays one seed verbosely.
DIFFTEST = env ZKD_BIN=$(CURDIR)/zkd /usr/bin/python3 tests/diff/difftest.py
# The long runs yield the CPU to anything else (nice runs the whole env command).
DIFFTEST_NICE = nice -n 10 $(DIFFTEST)
diff: zkd
ifneq ($(SEED),)
	$(DIFFTEST) --seed $(SEED) --ops $(or $(OPS),80) -v
else
	$(DIFFTEST) --selftest --seeds $(or $(SEEDS),300) --ops 80
endif
diff-long: zkd
	$(DIFFTEST_NICE) --seeds $(or $(SEEDS),10000) --ops 100 --keep-going
	$(DIFFTEST_NICE) --kinds all,expire --cfg tickTime=200 --session-timeout 3000 \
	  --first 100001 --seeds $(or $(EXPIRE_SEEDS),100) --ops 80 --keep-going

# Every ensemble failover scenario ENSEMBLE_REPEAT times (default 10), against zkd;
# `ZK_TARGET=apache make ensemble-long` runs them against Apache ZooKeeper 3.8.
ensemble-long: zkd
	ZKD_BIN=$(CURDIR)/zkd ENSEMBLE_REPEAT=$(or $(ENSEMBLE_REPEAT),10) \
	  /usr/bin/python3 -m pytest -q tests/integration/test_ensemble.py

# Longer runs than `make test`: 200 SIGKILL crash rounds, 5 minutes of election churn,
# 10,000 differential seeds, and each ensemble scenario 10 times.
test-long: zkd $(BUILD)/elect_main
	ZKD_BIN=$(CURDIR)/zkd ZKD_CRASH_ROUNDS=200 /usr/bin/python3 -m pytest -q tests/integration/test_durability.py
	ELECT_BIN=$(CURDIR)/$(BUILD)/elect_main ZKD_ELECT_CHURN_S=300 \
	/usr/bin/python3 -m pytest -q -s tests/integration/test_election.py -k churn
	$(MAKE) diff-long
	$(MAKE) ensemble-long

# `make bench`: zkd side by side with Apache ZooKeeper (when installed); see tests/bench/bench.py.
$(BUILD)/zkbench: tests/bench/zkbench.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -O2 -o $@ $<

# The server measured is the static build (what an embedded box runs), built aside.
bench: $(BUILD)/zkbench
	$(MAKE) STATIC=1 BUILD=build-static zkd-static
	ZKD_BIN=$(CURDIR)/zkd-static ZKBENCH=$(CURDIR)/$(BUILD)/zkbench /usr/bin/python3 tests/bench/bench.py

zkd-static: $(BUILD)/server.o $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS)

install: zkd
	install -D -m 0755 zkd $(DESTDIR)$(PREFIX)/bin/zkd

clean:
	rm -rf build build-san build-static build-fuzz zkd zkd-san zkd-static

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
