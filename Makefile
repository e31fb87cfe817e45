# TDOS build entry points. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= debug
SEEDS ?= 500

.PHONY: all build test host-test embedded-check sim bench fuzz vopr firmware clean help

all: build

help:
	@echo "make test            host tests (swift test) + armv6m Embedded compile/link + qemu Cortex-M0 tests"
	@echo "make sim             run the simulator mesh (six node processes over UDP on loopback)"
	@echo "make bench           wire-format, simulation and mesh benchmarks"
	@echo "make fuzz            libFuzzer on the frame decoder (FUZZ_SECONDS=120)"
	@echo "make vopr            many-seed deterministic simulation (VOPR_SEEDS=10000)"
	@echo "make firmware PICO_SDK_PATH=...   Pico W UF2 images"

build:
	$(SWIFT) build -c $(CONFIG)

host-test:
	$(SWIFT) test

embedded-check:
	scripts/embedded-check.sh

test: host-test embedded-check

bench:
	scripts/bench.sh

FUZZ_SECONDS ?= 120
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf .build .build-* build
