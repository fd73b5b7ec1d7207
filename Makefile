# xdp_udp_ports — see README.md. Most targets need root (BPF, XDP, netns).
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
ARCH_INCLUDE := /usr/include/$(shell uname -m)-linux-gnu
export BPF2GO_CFLAGS := -O2 -mcpu=v3 -g -Wall -Werror -I$(ARCH_INCLUDE)
FUZZTIME ?= 1m

.PHONY: all generate deps-generate build run test lint

all: build

# Regenerate the committed BPF objects and Go bindings from bpf/*.c.
generate: deps-generate
	cd bpf && $(GO) generate ./...

# clang, llvm (llvm-strip for bpf2go) and libbpf headers, from Debian.
deps-generate:
	@if ! command -v clang >/dev/null || ! command -v llvm-strip >/dev/null || [ ! -f /usr/include/bpf/bpf_helpers.h ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang llvm libbpf-dev linux-libc-dev; \
	fi

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/xdp_udp_ports ./cmd/xdp_udp_ports

run: build
	$(BIN)/xdp_udp_ports -config sample.conf

lint:
	$(GO) vet ./...

test: deps-generate build
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 30m ./...

# Differential fuzzing of the XDP program against the reference classifier
# (bpf/fuzz_linux_test.go) for FUZZTIME. Needs root. Failing inputs land in
# bpf/testdata/fuzz/FuzzClassify/ and replay in every `make test`.
.PHONY: fuzz
fuzz:
	CGO_ENABLED=0 $(GO) test ./bpf -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
