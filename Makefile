# mlsync: the only entry point for building, testing and running the demo.
#
#   make            build every program into bin/
#   make test       install missing packages (as root), build, run all tests
#   make demo       run the whole pipeline end to end on embedded defaults
#   make bench      run the benchmarks
#   make bench-budget  the shared Marketo budget under saturation
#   make lint       marker check and cppcheck
#   make format     clang-format every source file
#
# WERROR=1 turns warnings into errors (CI sets it); SANITIZE=address,undefined
# builds with sanitizers.

PKGS      := rdkafka libcurl json-c yaml-0.1 libmicrohttpd
TEST_PKGS := cmocka
DEB_PKGS  := librdkafka-dev libcurl4-openssl-dev libjson-c-dev libyaml-dev \
             libmicrohttpd-dev libcmocka-dev pkg-config curl

CC      ?= cc
BUILD   := build
BIN     := bin
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
          -Iinclude -MMD -MP -DMLS_VERSION='"$(VERSION)"'
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Recursive (=) so that pkg-config runs only after 'deps' has installed it.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS  = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

LIB_SRCS  := $(wildcard src/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libmlsync.a
SUP_SRCS  := $(wildcard tests/support/*.c)
SUP_OBJS  := $(SUP_SRCS:%.c=$(BUILD)/%.o)
SUP       := $(BUILD)/libtestsupport.a
CMDS      := $(notdir $(wildcard cmd/*))
PROGS     := $(CMDS:%=$(BIN)/%)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BIN)/tests/%)
IT_SRCS   := $(wildcard tests/integration/it_*.c)
IT_BINS   := $(IT_SRCS:tests/integration/%.c=$(BIN)/tests/%)
DEMO_BIN  := $(BIN)/tests/demo
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BIN)/tests/%)

.PHONY: all build deps test unit integration demo bench bench-budget lint format clean

all:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build

build: $(PROGS)

# Installs missing Debian packages when run as root; otherwise prints the
# exact command and fails, rather than building against half the libraries.
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
			grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "missing packages; run:"; \
			echo "  sudo apt-get install -y$$missing"; \
			exit 1; \
		fi; \
	fi

test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build-tests
	@MLS_BIN=$(BIN) tests/run.sh

build-tests: $(PROGS) $(UNIT_BINS) $(IT_BINS) $(DEMO_BIN)

unit:
	@$(MAKE) --no-print-directory build-tests
	@MLS_BIN=$(BIN) tests/run.sh unit

integration:
	@$(MAKE) --no-print-directory build-tests
	@MLS_BIN=$(BIN) tests/run.sh integration

demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build $(DEMO_BIN)
	@MLS_TOP=$(CURDIR) MLS_BIN=$(BIN) $(DEMO_BIN)

bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build-tests $(BENCH_BINS)
	@MLS_BIN=$(BIN) tests/bench.sh

bench-budget:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build $(BIN)/tests/bench_budget
	@MLS_BIN=$(BIN) tests/bench.sh budget

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(SUP): $(SUP_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

.SECONDEXPANSION:
$(PROGS): $(BIN)/%: $$(addprefix $(BUILD)/,$$(subst .c,.o,$$(wildcard cmd/%/*.c))) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(SUP) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

$(BIN)/tests/it_%: $(BUILD)/tests/integration/it_%.o $(SUP) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

$(DEMO_BIN): $(BUILD)/tests/demo/demo.o $(SUP) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/tests/bench_%: $(BUILD)/tests/bench/bench_%.o $(SUP) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

lint:
	@if grep -rnE '\b(TODO|FIXME|XXX|HACK)\b' cmd src include tests || \
	    grep -rnE 'LIMIT:[[:space:]]*(\*/)?[[:space:]]*$$' cmd src include tests; then \
		echo "lint: bare marker or empty LIMIT: found"; exit 1; fi
	@command -v cppcheck >/dev/null && cppcheck -q --std=c11 -Iinclude \
		--error-exitcode=1 --suppress=missingIncludeSystem src cmd || true

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
