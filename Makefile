# The two commands: `make run` and `make test`. Everything else serves them.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
BINARY := $(BUILD_DIR)/concertd

.PHONY: deps build run test unit e2e tsan bench bench-quick clean
deps:
	@scripts/install-deps.sh

build: deps
	@[ -f $(BUILD_DIR)/build.ninja ] || cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET)

run: build
	mkdir -p var
	$(BINARY)

unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

e2e: build
	scripts/test-e2e-all.sh $(BINARY)

# bench-quick last: the harness must never rot (it asserts that it ran and the invariants held).
test: unit e2e bench-quick

# The unit races (SQLite strategies, lock, queue) under ThreadSanitizer.
tsan: deps
	@[ -f build/tsan/build.ninja ] || cmake --preset tsan >/dev/null
	cmake --build --preset tsan
	ctest --test-dir build/tsan --output-on-failure -j2

# SPEC §5 against references run side by side: docs/benchmarks.md and .png (≤ 15 min).
# QUICK=1: ≤ 2 min, into a temp dir; proves the harness runs and the invariants hold.
bench: build
	@scripts/install-bench-deps.sh
	python3 bench/run.py --binary $(BINARY) $(if $(QUICK),--quick)

bench-quick:
	@$(MAKE) --no-print-directory bench QUICK=1

clean:
	rm -rf build
