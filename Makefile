# SecureAudit build, demo and test entry points. `make demo` and `make test`
# are all a fresh machine needs (Go and npm, as on the development machines).

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
BUF := $(CURDIR)/tools/node_modules/.bin/buf
SERVICES := rbac-agent entra-agent risk-agent report-agent orchestrator
# The integration tests in test/kube run etcd and kube-apiserver; where etcd
# is installed, `make test` builds the API server first (once, then cached).
KUBE_APISERVER := $(if $(shell command -v etcd),kube-apiserver)
MODULES = $(shell $(GO) list -m -f '{{.Path}}/...')
# The race detector runs over the platform, the services and the command
# line: their tests run servers, clients and the orchestrator's queue in
# goroutines. test/ (end-to-end over binaries built without -race, and the
# kube-apiserver harness) would add its run time under -race for no
# instrumented code of ours.
RACE_MODULES = $(shell $(GO) list -m -f '{{.Path}}/...' | grep -E '/(platform|cli|services/[^/]+)/\.\.\.$$')

.PHONY: all build demo test test-short test-race fuzz kube-apiserver proto lint check-generated breaking ci clean tools

all: build

## build: the five service binaries and the secureaudit command, in bin/
## (-buildvcs=auto: stamped with the VCS revision `-version` prints, even where GOFLAGS says false)
build:
	@mkdir -p $(BIN)
	$(GO) build -buildvcs=auto -o $(BIN)/ $(addprefix ./services/,$(SERVICES))
	$(GO) build -buildvcs=auto -o $(BIN)/secureaudit ./cli

## images: the five service images, built in Go from static (CGO_ENABLED=0) binaries with no
## container engine and nothing pulled: out/images/<service>-<version>.tar (OCI image layouts, empty
## base, CA certificates, non-root user 65532), tagged with the binaries' version (deploy/images)
.PHONY: images
images:
	@mkdir -p out/images/bin
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -trimpath -ldflags=-s -o out/images/bin/ $(addprefix ./services/,$(SERVICES))
	$(GO) run ./deploy/images/cmd/images -bin out/images/bin -out out/images

## demo: audit the bundled example cluster and directory; writes out/report.{md,html,json,sarif,oscal.json,csv} and out/evidence.bundle (verified)
demo: build
	$(BIN)/secureaudit scan --snapshot examples/cluster --directory examples/directory.json --cluster-name aks-fabrikam-prod --out out --format md,html,json,sarif,oscal,csv --evidence-out out/evidence.bundle
	$(BIN)/secureaudit evidence verify out/evidence.bundle
	@echo "report: out/report.md; evidence: out/evidence.bundle"

## test: every module's tests, including the end-to-end test over the real binaries
test: build $(KUBE_APISERVER)
	SECUREAUDIT_BIN_DIR=$(BIN) $(GO) test -count=1 $(MODULES)

## kube-apiserver: build the real API server of the integration tests (test/kube), cached in .cache/kube
kube-apiserver:
	$(GO) run ./test/kube/cmd/build

## test-short: unit tests only (no processes, no end-to-end)
test-short:
	$(GO) test -short $(MODULES)

## test-race: the platform's, services' and command line's tests once more with the race detector
test-race:
	$(GO) test -race -count=1 $(RACE_MODULES)

## fuzz: run every Go fuzz target (func FuzzXxx in a _test.go file) for FUZZTIME each;
## a crasher is written to the package's testdata/fuzz/FuzzXxx/ (commit it with the fix).
## Go 1.26's fuzzing coordinator can fail a target at the end of -fuzztime with a bare
## "context deadline exceeded" and no input written (golang/go#75804, fixed in Go 1.27): that
## one result, with no new file in testdata/fuzz/FuzzXxx/, is reported and not counted as a
## finding; every other failure fails the target.
FUZZTIME ?= 20s
fuzz:
	@set -e; for file in $$(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' platform cli services); do \
		dir=./$$(dirname $$file); \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "fuzz $$dir $$target for $(FUZZTIME)"; \
			corpus=$$dir/testdata/fuzz/$$target; before=$$(ls $$corpus 2>/dev/null | wc -l); \
			out=$$(mktemp); rc=0; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$dir > $$out 2>&1 || rc=$$?; \
			cat $$out; \
			if [ $$rc -ne 0 ]; then \
				after=$$(ls $$corpus 2>/dev/null | wc -l); \
				if [ "$$after" = "$$before" ] && grep -qx '    context deadline exceeded' $$out && ! grep -q 'Failing input' $$out; then \
					echo "fuzz $$target: Go's coordinator deadline race (golang/go#75804), no input written: not a finding"; \
				else rm -f $$out; exit $$rc; fi; \
			fi; \
			rm -f $$out; \
		done; \
	done

tools: $(BUF)

$(BUF): tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --silent
	@touch $(BUF)

## proto: regenerate gen/ from proto/ with local plugins only (no Buf Schema Registry)
proto: $(BUF)
	@mkdir -p $(BIN)
	cd gen && GOWORK=off $(GO) build -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	rm -rf gen/secureaudit
	PATH=$(BIN):$$PATH $(BUF) generate

## lint: buf lint, go vet, gofmt
lint: $(BUF)
	$(BUF) lint
	$(GO) vet $(MODULES)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## breaking: buf breaking against the previous commit
breaking: $(BUF)
	@if git cat-file -e HEAD~1:proto 2>/dev/null; then \
		$(BUF) breaking --against '.git#ref=HEAD~1'; \
	else echo "no previous proto/ to compare with"; fi

## check-generated: fail if regenerating gen/ changes anything
check-generated: proto
	@git diff --exit-code --stat -- gen || { echo "gen/ is stale: run make proto and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen)" || { git status --porcelain -- gen; echo "gen/ has untracked changes: run make proto and commit"; exit 1; }

## ci: everything CI checks
ci: lint check-generated breaking test

clean:
	rm -rf $(BIN) out
