# Two commands matter: `make run` and `make test`. Both install what they need.
BUILD_DIR ?= build/release
CXX_COMPILER ?= clang++-14
CMAKE_FLAGS ?= -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=$(CXX_COMPILER)
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: deps configure build run test unit e2e bench clean

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/reservoir serve $(ARGS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

e2e: build
	bash tests/e2e/run.sh

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	bash tests/e2e/run.sh

# Benchmarks: every experiment under bench/ (each prints a Markdown table and
# writes its JSON under build/bench/), then BENCHMARKS.md is regenerated.
bench: build
	mkdir -p build/bench
	RESERVOIR_BIN=$(abspath $(BUILD_DIR))/reservoir python3 bench/run_all.py

clean:
	rm -rf build
