# natgw build, test and benchmark entry points. See README.md.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The DPDK driver (lcore/dpdk, cgo) is built in when pkg-config finds the
# system DPDK (Debian: libdpdk-dev); otherwise the binary has AF_PACKET only.
BUILD_TAGS ?= $(shell pkg-config --exists libdpdk 2>/dev/null && echo dpdk)

# The race detector runs on the packages of the dataplane and management
# code; the command, the end-to-end suite, the testbed, benchmark-harness
# and deployment tests (app, e2e, scripts, bench, deploy) run without it.
# Between them they cover ./... . The end-to-end suite (e2e, about 20
# minutes on a 2-core CI VM: 1202 s in the last CI run, before its idle
# reclaim step went from minutes to seconds) sets the 40-minute -timeout of
# the second test line: a margin for a slow VM, within CI's 90 minutes.
RACE_PKGS  := ./portalloc/... ./nat/... ./mgmt/... ./lcore/... ./natlog/... ./attrib/... ./bgp/...
OTHER_PKGS := ./app/... ./e2e/... ./scripts/... ./bench/... ./deploy/...

.PHONY: all build test test-unit deps lint bench pgo demo demo-cluster clean

all: build

build:
	$(GO) build -trimpath -tags "$(BUILD_TAGS)" -ldflags "$(LDFLAGS)" -o bin/natgw ./app

# deps installs what the tests and the demo need (root, Debian): apt packages
# and hugepages. It is idempotent and quiet when everything is there.
deps:
	@if [ -x scripts/install-deps.sh ]; then scripts/install-deps.sh; fi

# The shell scripts shellcheck reads: every *.sh, and the CI entry point.
SHELL_SCRIPTS = .ci/run $(shell find . -name '*.sh' -not -path './.git/*' | sort)

# lint runs every static check, each on both builds when DPDK is present
# (without build tags, and with BUILD_TAGS): gofmt, go vet, staticcheck
# (pinned by the tool line in go.mod), go mod tidy -diff and shellcheck
# (scripts/install-deps.sh installs it). Run it before committing.
lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt would change:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
ifneq ($(strip $(BUILD_TAGS)),)
	$(GO) vet -tags "$(BUILD_TAGS)" ./...
	$(GO) tool staticcheck -tags "$(BUILD_TAGS)" ./...
endif
	$(GO) mod tidy -diff
	@command -v shellcheck >/dev/null || { echo "shellcheck is not installed: run scripts/install-deps.sh"; exit 1; }
	shellcheck $(SHELL_SCRIPTS)

# test runs every test: lint, the race detector on the pure-Go packages,
# then the whole tree (end-to-end tests included).
test: deps lint
	$(GO) test -race -count=1 -tags "$(BUILD_TAGS)" $(RACE_PKGS)
	NATGW_REQUIRE_TESTBED=1 NATGW_REQUIRE_E2E=1 $(GO) test -count=1 -timeout 40m -tags "$(BUILD_TAGS)" $(OTHER_PKGS)

# test-unit skips dependency installation (for a quick loop while editing).
# As root it runs the end-to-end suite too, hence go test's -timeout (the
# default 10m is shorter than the suite).
test-unit: lint
	$(GO) test -count=1 -timeout 40m -tags "$(BUILD_TAGS)" ./...

# demo runs natgw between network namespaces with real traffic (root).
demo: deps
	scripts/demo.sh

# demo-cluster runs two natgw nodes behind ECMP, announced by BGP to two FRR
# routers, and shows spread, failure, recovery and drain (root).
demo-cluster: deps
	scripts/demo-cluster.sh

# bench runs the benchmark of SPEC §9 (root, DPDK; bench/bench.sh): the Go
# micro-benchmarks of nat and portalloc, natgw's DPDK throughput harness
# (bench/benchharness) and dpdk-testpmd on the same virtual devices, and
# writes bench/results/report.md and bench/results/report.json. See BENCHMARKS.md.
bench:
	GO="$(GO)" bench/bench.sh

# pgo refreshes app/default.pgo, the CPU profile of the packet path that
# `go build` optimises natgw with (root, DPDK; bench/pgo.sh).
pgo:
	GO="$(GO)" bench/pgo.sh

clean:
	rm -rf bin
