# The two commands of the README's quick start, and the pieces they are made of.
#   make run   install what is missing, build, make a development PKI, run otad in the foreground
#   make test  install what is missing, build with ASan+UBSan, run every test
#   make deb   the Debian packages otad, ota-sign, otactl, ota-agent in build-deb/ (docs/operations.md)
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
M33_BUILD ?= build-m33
DEB_BUILD ?= build-deb
FUZZ_SECONDS ?= 45

.PHONY: all deps build run test test-asan test-fuzz test-m33 deb clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/dev-run.sh $(BUILD)

test: deps test-asan test-fuzz test-m33
	@echo "make test: all suites passed"

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOTA_SANITIZE=ON -DOTA_WERROR=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest -j $(JOBS) --output-on-failure --timeout 600
	@grep -h "^power-cut sweep.*: [0-9]* cases" $(ASAN_BUILD)/Testing/Temporary/LastTest.log || true

test-fuzz:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOTA_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test-m33:
	cmake -S firmware-agent -B $(M33_BUILD) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/firmware-agent/cmake/arm-none-eabi.cmake -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
	cmake --build $(M33_BUILD) -j $(JOBS)
	cd $(M33_BUILD) && ctest --output-on-failure --timeout 300
	@grep -h ' passed, ' $(M33_BUILD)/Testing/Temporary/LastTest.log

# Release build with Debian's hardening flags, then one .deb per component (CPack).
deb: deps
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTA_WITH_BENCH=OFF \
		-DCMAKE_C_FLAGS="$$(dpkg-buildflags --get CFLAGS) $$(dpkg-buildflags --get CPPFLAGS)" \
		-DCMAKE_EXE_LINKER_FLAGS="$$(dpkg-buildflags --get LDFLAGS)" >/dev/null
	cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB
	@ls $(DEB_BUILD)/*.deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(M33_BUILD) $(DEB_BUILD)
