# imagesd: a plain GNU Makefile.
#
#   make            build build/imagesd (release flags)
#   make run        install missing Debian packages, build, start the server on its defaults
#   make test       install missing packages, build (release and sanitizer builds), run every test
#   make SANITIZE=address,undefined   build into build/asan with those sanitizers
#   make fuzz       libFuzzer targets with clang into build/fuzz (needs clang)
#   make format     clang-format every C file in place; make format-check only checks
#
# Sources are found by directory: every src/<module>/*.c except src/cli goes into
# $(BUILD)/libimagesd.a; src/cli/*.c adds main and the subcommands. Unit tests are
# tests/unit/<module>/test_*.c, one binary each. Fuzz targets are fuzz/fuzz_*.c.

CC       ?= cc
BUILD    ?= build
SANITIZE ?=
CI       ?=
WERROR   ?= $(if $(filter true 1,$(CI)),1,0)

PKGS := libmicrohttpd jansson libpng libjpeg libwebp sqlite3 libcrypto freetype2 openblas libcurl \
        libpcre2-8 inih zlib

WARNINGS := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wold-style-definition -Wpointer-arith -Wvla -Wundef -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

OPT      ?= -O2
CPPFLAGS += -Isrc -Itests/unit -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS   += -std=c17 -g $(OPT) $(WARNINGS) -pthread -fno-strict-aliasing
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# The engine's hot loops want the stronger optimiser; numerics stay IEEE (no fast-math).
$(BUILD)/obj/src/engine/%.o: OPT = -O3

# MODULES="err buf image codec" limits the library and the unit tests to those src/ folders
# (paths under src/, e.g. engine/ops): for working on a few modules while others are in flux.
MODULES  ?=
ifeq ($(MODULES),)
LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/*'))
TEST_SRC := $(sort $(shell find tests/unit -name 'test_*.c' 2>/dev/null))
else
LIB_SRC  := $(sort $(foreach m,$(MODULES),$(shell find src/$(m) -name '*.c')))
TEST_SRC := $(sort $(foreach m,$(MODULES),$(shell find tests/unit/$(m) -name 'test_*.c' 2>/dev/null)))
endif
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/unit/support/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
ifneq ($(origin FUZZ),undefined)
FUZZ_SRC := $(sort $(wildcard $(foreach f,$(FUZZ),fuzz/fuzz_$(f).c)))
endif

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
# an archive, so each test links only the support code it uses
TEST_SUPPORT_LIB := $(BUILD)/libtestsupport.a
TEST_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
FUZZ_BIN := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

TOOL_SRC := $(sort $(wildcard tools/*.c))
# TOOLS="a b" builds only tools/a.c and tools/b.c (TOOLS= none), like FUZZ for fuzz targets
TOOLS    ?= $(patsubst tools/%.c,%,$(TOOL_SRC))
TOOL_BIN := $(foreach t,$(TOOLS),$(BUILD)/tools/$(t))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

LIB := $(BUILD)/libimagesd.a
BIN := $(BUILD)/imagesd

.PHONY: all deps deps-test run test sanitize tsan fuzz \
        format format-check bench clean goldens
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BIN)

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# The archive is rebuilt when the set of its sources changes (another MODULES in the same
# build folder), not only when one of them does: .SECONDARY would otherwise let a missing
# object of a newly added module go unbuilt.
LIB_LIST := $(BUILD)/lib-sources.txt
$(shell mkdir -p $(BUILD) && (echo '$(LIB_SRC)' | cmp -s - $(LIB_LIST) || echo '$(LIB_SRC)' > $(LIB_LIST)))

# ar names members by basename: two sources with one name would shadow each other
$(LIB): $(LIB_OBJ) $(LIB_LIST)
	@mkdir -p $(@D)
	@dups=$$(for f in $(LIB_OBJ); do basename $$f; done | sort | uniq -d); \
	  [ -z "$$dups" ] || { echo "error: object names used twice in src/: $$dups" >&2; exit 1; }
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(TEST_SUPPORT_LIB): $(TEST_SUPPORT_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests: cmocka, output in TAP so tests/run.sh can count cases.
$(BUILD)/tests/%: tests/unit/%.c $(TEST_SUPPORT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_SUPPORT_LIB) $(LIB) \
		$(LDFLAGS) $(LDLIBS) -lcmocka

# Fuzz targets built with a replay driver, so the corpus runs under gcc + sanitizers.
$(BUILD)/fuzz/%: fuzz/%.c fuzz/replay_main.c $(TEST_SUPPORT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -o $@ $< fuzz/replay_main.c $(TEST_SUPPORT_LIB) $(LIB) \
		$(LDFLAGS) $(LDLIBS)

# Tools (tools/*.c): developer programs, e.g. the random-weight model writer; they may use the
# unit-test support code (tests/unit/support) such as the tiny-model writer.
$(BUILD)/tools/%: tools/%.c $(TEST_SUPPORT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_SUPPORT_LIB) $(LIB) $(LDFLAGS) $(LDLIBS) \
		-lcmocka

tools: $(TOOL_BIN)

# Benchmarks (bench/*.c): print ratios measured in one run; see docs/performance.md.
$(BUILD)/bench/%: bench/%.c $(TEST_SUPPORT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -o $@ $< $(TEST_SUPPORT_LIB) $(LIB) $(LDFLAGS) $(LDLIBS) \
		-lcmocka

bench-bin: $(BENCH_BIN) $(BIN)
.PHONY: bench-bin

tests-bin: $(TEST_BIN) $(FUZZ_BIN) $(TOOL_BIN) $(BIN)
# the unit tests and fuzz replays only, without the server binary (see MODULES, FUZZ=name...)
tests-only: $(TEST_BIN) $(FUZZ_BIN) $(TOOL_BIN)
.PHONY: tests-bin tests-only tools

deps:
	@sh mk/deps.sh build

deps-test:
	@sh mk/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	exec ./$(BIN) serve

NODE_DEPS := tests/integration/node_modules/.installed
$(NODE_DEPS): tests/integration/package.json tests/integration/package-lock.json
	cd tests/integration && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# `make test` = deps, the release build, the ASan+UBSan build with every unit test and fuzz
# replay and the integration tests against its server, then the unit tests of the threaded
# modules and the integration tests again under ThreadSanitizer, and one summary line.
test: deps-test $(NODE_DEPS)
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=address,undefined OPT=-O1 tests-bin
	@$(MAKE) --no-print-directory BUILD=build/tsan SANITIZE=thread OPT=-O1 tsan-bin
	@sh tests/run.sh build/asan build/tsan

# under ThreadSanitizer: the server and the unit tests of the threaded modules
TSAN_TESTS := $(filter $(BUILD)/tests/jobs/% $(BUILD)/tests/metrics/% $(BUILD)/tests/limits/% \
              $(BUILD)/tests/ledger/% $(BUILD)/tests/diffusion/%,$(TEST_BIN))
# the tools the integration tests run to make their tiny models
TSAN_TOOLS := $(filter $(BUILD)/tools/mksdmodel $(BUILD)/tools/mkclipvocab,$(TOOL_BIN))
tsan-bin: $(BIN) $(TSAN_TESTS) $(TSAN_TOOLS)
.PHONY: tsan-bin

sanitize:
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=address,undefined OPT=-O1 tests-bin

tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan SANITIZE=thread OPT=-O1 tsan-bin

fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz-clang CC=clang \
		SANITIZE=fuzzer-no-link,address,undefined OPT=-O1 $(BUILD_FUZZ_LIB)
	@mkdir -p build/fuzz-clang/bin
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
		echo "clang $$n"; \
		clang $(CPPFLAGS) -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined \
		  -o build/fuzz-clang/bin/$$n $$f build/fuzz-clang/libimagesd.a $(LDLIBS) || exit 1; \
	done
BUILD_FUZZ_LIB = build/fuzz-clang/libimagesd.a

format:
	clang-format -i $$(find src tests fuzz bench tools -name '*.[ch]' 2>/dev/null)

format-check:
	@clang-format --dry-run -Werror $$(find src tests fuzz bench tools -name '*.[ch]' 2>/dev/null)

# Regenerates the committed golden files from the independent PyTorch reference
# (Debian's python3-torch, float64). Not part of `make test`: CI needs no PyTorch.
goldens: tools
	@for f in tests/reference/gen_*.py; do echo "goldens: $$f"; \
		BUILD=$(BUILD) /usr/bin/python3 $$f || exit 1; done

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
