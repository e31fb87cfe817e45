# TDOS build entry points. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= debug
SEEDS ?= 500

.PHONY: all build test host-test embedded-check firmware-check sim-seeds firmware-smoke sim bench fuzz vopr firmware clean help

all: build

help:
	@echo "make test            host tests (swift test) + armv6m Embedded compile/link + qemu Cortex-M0 tests + 500 seeds of each storage simulation"
	@echo "make sim             run the simulator mesh (six node processes over UDP on loopback)"
	@echo "make bench           wire-format, simulation and mesh benchmarks"
	@echo "make fuzz            libFuzzer on the frame decoder (FUZZ_SECONDS=120)"
	@echo "make vopr            many-seed deterministic simulation: the fault swarm, storage crashes, the replicated log, config consensus (VOPR_SEEDS=10000)"
	@echo "make firmware PICO_SDK_PATH=...   Pico W UF2 images (docs/FIRMWARE.md)"
	@echo "make firmware-check  armv6m link of every Firmware module against the stub board (part of make test)"
	@echo "make firmware-smoke  boot the UF2 in the rp2040py emulator (needs make firmware first)"

build:
	$(SWIFT) build -c $(CONFIG)

host-test:
	$(SWIFT) test

embedded-check:
	scripts/embedded-check.sh

firmware-check:
	scripts/firmware-check.sh

test: host-test embedded-check firmware-check sim-seeds

# Many seeds of the storage simulations, release build (issue 8: >= 500 in make test):
# single-node log crashes and torn writes, the replicated log, config consensus.
sim-seeds:
	$(SWIFT) build -c release --product tdos-sim
	.build/release/tdos-sim --storage --seeds 1..$(SEEDS)
	.build/release/tdos-sim --replicated-log --seeds 1..$(SEEDS)
	.build/release/tdos-sim --consensus --seeds 1..$(SEEDS)

sim:
	$(SWIFT) build -c release --product tdos
	.build/release/tdos sim up

firmware:
	scripts/firmware.sh "$(PICO_SDK_PATH)"

firmware-smoke:
	scripts/firmware-smoke.sh

bench:
	scripts/bench.sh

VOPR_SEEDS ?= 10000
vopr:
	$(SWIFT) run -c release tdos-sim --seeds 1..$(VOPR_SEEDS)
	$(SWIFT) run -c release tdos-sim --storage --seeds 1..$(VOPR_SEEDS)
	$(SWIFT) run -c release tdos-sim --replicated-log --seeds 1..$(VOPR_SEEDS)
	$(SWIFT) run -c release tdos-sim --consensus --seeds 1..$(VOPR_SEEDS)

FUZZ_SECONDS ?= 120
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf .build .build-* build
