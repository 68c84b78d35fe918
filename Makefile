# scaleplan - top-level entry points (README "Install"; docs/development.md "Build targets").
#   make deps      install the Debian packages the build needs (only the missing ones)
#   make build     configure and build Release into build/ (optional parts ON when found)
#   make run       deps + build + the main job on the embedded default presets
#   make test      deps + build + parts + ctest
#   make parts     print the optional parts the build has; fail when one whose packages are installed is OFF
#   make package   build + `cmake --install` into build/stage + `cpack -G DEB` (checks both)
#   make validate  build + predict the published runs
#   make bench     build + run the Google Benchmark programs under build/bench
#   make gui       build + the Qt explorer (no display: an offscreen screenshot, build/scaleplan-gui.png)
#   make asan      ASan+UBSan build of the core libraries and their unit tests in build-asan/, run
#   make fuzz      libFuzzer targets (clang) in build-fuzz/, each run FUZZ_SECONDS (default 60)
#   make clean     remove build/

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
# Prerequisites run in the order written (deps before build); cmake parallelises the build itself.
.NOTPARALLEL:

BUILD_DIR := build
# Extra configure arguments, e.g. CMAKE_ARGS=-DSCALEPLAN_BUILD_BENCH=OFF (they stay in the CMake cache).
CMAKE_ARGS ?=
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS ?= 2
SCALEPLAN := $(BUILD_DIR)/cli/scaleplan

# Packages the build needs now (Debian 12 names).
PKGS := cmake g++ make pkg-config libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev \
        libtbb-dev libeigen3-dev googletest libgtest-dev libbenchmark-dev python3

# Optional parts (DESIGN.md sec. 2): CMake turns SCALEPLAN_WITH_SIMGRID / _MPI / _GUI ON when these
# are found, so `make deps OPTIONAL=1` installs them too.
# OPTIONAL=0 skips them (the core builds and tests without them).
OPTIONAL_PKGS := libsimgrid-dev libopenmpi-dev openmpi-bin qt6-base-dev qt6-charts-dev libqt6opengl6-dev qt6-svg-dev
OPTIONAL ?= 1

DEPS_PKGS := $(PKGS) $(if $(filter 1,$(OPTIONAL)),$(OPTIONAL_PKGS))

# The main job on the embedded default (issue 2): search once it exists, else the Megatron plan.
SEARCH_ARGS := --model gpt3-175b --cluster selene-a100 --gpus 1024 --gbs 1536
ESTIMATE_ARGS := --model gpt3-175b --cluster selene-a100 --gpus 1024 \
                 --plan tp=8,pp=16,mbs=1,gbs=1536,recompute=full

.PHONY: all deps build parts run test package validate bench gui clean asan fuzz fuzz-deps

all: build

deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "make deps: dpkg-query not found; this target needs Debian/Ubuntu." >&2; \
	  echo "Install the equivalents of: $(DEPS_PKGS)" >&2; \
	  exit 1; \
	fi; \
	missing=""; \
	for p in $(DEPS_PKGS); do \
	  if ! dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed'; then \
	    missing="$$missing $$p"; \
	  fi; \
	done; \
	reinstall=""; \
	if [[ " $(DEPS_PKGS) " == *" libopenmpi-dev "* && " $$missing " != *" libopenmpi-dev "* ]] && \
	   ! ls /usr/lib/*/openmpi/include/mpi.h >/dev/null 2>&1; then \
	  echo "make deps: libopenmpi-dev is registered but mpi.h is missing: reinstalling it"; \
	  reinstall="libopenmpi-dev"; \
	fi; \
	if [ -z "$$missing$$reinstall" ]; then \
	  echo "make deps: all $(words $(DEPS_PKGS)) packages are installed"; \
	  exit 0; \
	fi; \
	echo "make deps: missing:$$missing $$reinstall"; \
	if [ "$$(id -u)" -eq 0 ]; then \
	  apt-get update; \
	  if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi; \
	  if [ -n "$$reinstall" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --no-install-recommends $$reinstall; fi; \
	else \
	  echo "make deps: not root; run:" >&2; \
	  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$$missing" >&2; \
	  exit 1; \
	fi

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# `search --help` alone is no test: while `search` is not registered, CLI11 answers it with the
# top-level help and exit 0. The subcommand exists when its own usage line comes back.
run: deps build
	@help=$$($(SCALEPLAN) search --help 2>&1 || true); \
	if grep -q 'Usage: .*scaleplan search' <<<"$$help"; then \
	  echo "+ $(SCALEPLAN) search $(SEARCH_ARGS)"; \
	  $(SCALEPLAN) search $(SEARCH_ARGS); \
	else \
	  echo "+ $(SCALEPLAN) estimate $(ESTIMATE_ARGS)"; \
	  $(SCALEPLAN) estimate $(ESTIMATE_ARGS); \
	fi

# The optional parts the build folder has (written by CMakeLists.txt at configure). A part whose packages
# `make deps` installs (OPTIONAL=1) must be ON, and CUDA must be ON when nvcc exists: a missing install
# step or a stale cache fails here instead of silently dropping the part (wave 1's GUI was never built
# on a fresh machine because Qt6Charts needed libqt6opengl6-dev).
parts:
	@f=$(BUILD_DIR)/scaleplan_parts.txt; \
	if [ ! -f "$$f" ]; then echo "make parts: $$f is missing (run make build)" >&2; exit 1; fi; \
	expect="TBB"; \
	if [ "$(OPTIONAL)" = 1 ]; then expect="$$expect SIMGRID MPI GUI"; fi; \
	if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then expect="$$expect CUDA"; fi; \
	echo "== parts built ($$f)"; \
	bad=""; \
	while IFS='=' read -r name state; do \
	  want="optional"; \
	  if [[ " $$expect " == *" $$name "* ]]; then want="expected"; fi; \
	  printf '  %-8s %-4s (%s)\n' "$$name" "$$state" "$$want"; \
	  if [ "$$want" = expected ] && [ "$$state" != ON ]; then bad="$$bad $$name"; fi; \
	done < "$$f"; \
	if [ -n "$$bad" ]; then \
	  echo "make parts: expected ON but OFF:$$bad (their packages are installed by make deps, or nvcc exists);" \
	       "see the configure log for what CMake could not find" >&2; \
	  exit 1; \
	fi

# Any failing test makes ctest, and so make, exit non-zero.
test: deps build parts
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(CTEST_JOBS)

# Installable (issue 18): install into a staging prefix, run the installed binary from there, and
# pack the .deb; dpkg-deb lists what the package holds.
STAGE := $(BUILD_DIR)/stage
package: build
	rm -rf $(STAGE)
	cmake --install $(BUILD_DIR) --prefix $(abspath $(STAGE))
	$(STAGE)/bin/scaleplan --version
	$(STAGE)/bin/scaleplan presets --kind clusters
	test -f $(STAGE)/share/bash-completion/completions/scaleplan
	test -d $(STAGE)/share/scaleplan/configs/models
	@if grep -q '^GUI=ON' $(BUILD_DIR)/scaleplan_parts.txt; then test -x $(STAGE)/bin/scaleplan-gui && QT_QPA_PLATFORM=offscreen $(STAGE)/bin/scaleplan-gui --help >/dev/null && echo "scaleplan-gui installed"; fi
	@if grep -q '^CUDA=ON' $(BUILD_DIR)/scaleplan_parts.txt; then test -f $(STAGE)/lib/libscaleplan_cuda.so && echo "CUDA module installed"; fi
	cd $(BUILD_DIR) && cpack -G DEB
	dpkg-deb --info $(BUILD_DIR)/scaleplan_*.deb | grep -E 'Package|Version|Depends'
	dpkg-deb --contents $(BUILD_DIR)/scaleplan_*.deb | awk '{print $$NF}' | grep -E 'bin/|\.so$$|completions' 

validate: build
	$(SCALEPLAN) validate

bench: build
	@found=0; \
	if [ -d $(BUILD_DIR)/bench ]; then \
	  while IFS= read -r b; do \
	    found=1; \
	    echo "+ $$b"; \
	    "$$b"; \
	  done < <(find $(BUILD_DIR)/bench -path '*/CMakeFiles' -prune -o -type f -perm -u+x -print | sort); \
	fi; \
	if [ "$$found" -eq 0 ]; then echo "make bench: no benchmark programs under $(BUILD_DIR)/bench"; fi

GUI := $(BUILD_DIR)/gui/scaleplan-gui
gui: build
	@if [ ! -x $(GUI) ]; then echo "make gui: $(GUI) was not built (Qt6 with QtCharts not found: make deps)" >&2; exit 1; fi
	@if [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
	  echo "+ $(GUI)"; $(GUI); \
	else \
	  echo "make gui: no display; rendering offscreen to $(BUILD_DIR)/scaleplan-gui.png"; \
	  $(GUI) --screenshot $(BUILD_DIR)/scaleplan-gui.png; \
	fi

clean:
	rm -rf $(BUILD_DIR)

# ---- robustness (issue 17, docs/reliability.md) ----
# ASan + UBSan: the core libraries and their unit tests; no CLI, GUI, CUDA, MPI, SimGrid or
# benchmarks (their tests run in `make test`). Sanitizer reports abort the test that hits them.
ASAN_DIR := build-asan
ASAN_CMAKE_ARGS := -DSCALEPLAN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Release -DSCALEPLAN_WITH_GUI=OFF -DSCALEPLAN_WITH_CUDA=OFF \
                   -DSCALEPLAN_WITH_MPI=OFF -DSCALEPLAN_WITH_SIMGRID=OFF -DSCALEPLAN_BUILD_BENCH=OFF
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The unit tests of the core layers (common, hardware, model, strategies, analytic, search, validation).
ASAN_TESTS := test_reliability test_plan test_model test_memory test_collectives test_configs test_tensor_nd \
              test_context test_expert test_zero_bubble_fp8 test_offload test_capacity
asan: deps
	cmake -S . -B $(ASAN_DIR) $(ASAN_CMAKE_ARGS) > $(ASAN_DIR).configure.log || { cat $(ASAN_DIR).configure.log; exit 1; }
	cmake --build $(ASAN_DIR) -j$(JOBS) --target $(ASAN_TESTS)
	cd $(ASAN_DIR) && $(ASAN_ENV) ctest --output-on-failure -j$(CTEST_JOBS) -E NOT_BUILT -LE 'executor|mpi|cuda|cli' --timeout 300

# libFuzzer (clang + its runtime); the seeds and the run live in tests/fuzz/run_fuzzers.sh.
FUZZ_DIR := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_PKGS := clang libclang-rt-14-dev
fuzz-deps:
	@$(MAKE) --no-print-directory deps PKGS="$(PKGS) $(FUZZ_PKGS)" OPTIONAL=0
fuzz: fuzz-deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DSCALEPLAN_FUZZ=ON -DCMAKE_BUILD_TYPE=Release -DSCALEPLAN_BUILD_TESTS=OFF \
	  -DSCALEPLAN_BUILD_BENCH=OFF -DSCALEPLAN_WITH_GUI=OFF -DSCALEPLAN_WITH_CUDA=OFF -DSCALEPLAN_WITH_MPI=OFF \
	  -DSCALEPLAN_WITH_SIMGRID=OFF > $(FUZZ_DIR).configure.log || { cat $(FUZZ_DIR).configure.log; exit 1; }
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target fuzz_model_yaml fuzz_cluster_yaml fuzz_device_yaml fuzz_plan_string \
	  fuzz_plan_yaml fuzz_runs_yaml
	tests/fuzz/run_fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS)
