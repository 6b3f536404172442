# Tandem: `make build`, `make check`, `make demo`. meson + ninja do the work.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MESON_OPTS ?=

.PHONY: all build deps check unit demo fuzz bench clean format

all: build

deps:
	@tools/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

build-fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

# Every test layer; the last line is "N passed, N failed, N skipped".
check: build build-asan build-fuzz
	@python3 tests/run.py --build $(BUILD) --asan-build $(ASAN_BUILD) --fuzz-build $(FUZZ_BUILD)

# Unit tests only, plain build (fast loop while developing).
unit: build
	@python3 tests/run.py --build $(BUILD) --layers unit

# Longer fuzzing of every parser (FUZZ_SECONDS per target).
FUZZ_SECONDS ?= 300
fuzz: build-fuzz
	@python3 tests/run.py --fuzz-build $(FUZZ_BUILD) --layers fuzz --fuzz-seconds $(FUZZ_SECONDS)

demo: build
	@sh tools/demo.sh $(BUILD)

bench: build
	@sh bench/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
