# Datera dynamic provisioner. `make help` lists the targets.
SHELL := /bin/bash
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help deps build typecheck lint test test-unit test-e2e mutation demo cluster cluster-down cluster-load plane sim bench clean image node-images

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

deps: $(NPM_STAMP) ## install npm dependencies (npm ci) when needed

build: deps ## compile TypeScript to dist/
	npx tsc -p tsconfig.build.json

typecheck: deps ## type-check everything (lib, spec, bench)
	npx tsc --noEmit

# eslint.config.js: correctness rules only (floating promises, misused promises, unused variables);
# knip.jsonc: unused files, exports and dependencies, and imports of undeclared packages.
# Both run, so one pass lists every finding; either one failing fails the target.
lint: typecheck ## type-check, then eslint and knip (unused files, exports, dependencies)
	status=0; npx eslint . || status=1; npx knip || status=1; exit $$status

plane: ## build (once, cached outside the tree) the control plane from Go modules
	spec/cluster/build.sh

test: deps typecheck plane ## install, type-check and run every spec (unit, simulator, end-to-end)
	TESTPLANE_BIN=$$(spec/cluster/build.sh) npx mocha

test-unit: deps typecheck ## only the specs that need no control plane
	npx mocha --exclude 'spec/e2e/**'

test-e2e: deps plane ## only the end-to-end specs on the real control plane
	TESTPLANE_BIN=$$(spec/cluster/build.sh) npx mocha 'spec/e2e/**/*.spec.ts'

# Mutation testing (StrykerJS, stryker.config.json) of the modules that can lose data or leak
# credentials, against the specs that need no control plane (not spec/e2e). Incremental: a re-run tests only changed code/specs.
# One module: make mutation MUTATION_ARGS='--mutate lib/flex/mount.ts'. Full run: MUTATION_ARGS=--force.
# DATERA_FLEX_IN_PROCESS=1: the flex driver specs run call-outs in the test process, where
# Stryker's mutants are (spec/flex/harness.ts); `make test` spawns the driver as kubelet does.
mutation: deps ## mutation testing of the data/credential modules; report in reports/mutation/index.html
	DATERA_FLEX_IN_PROCESS=1 NODE_OPTIONS="--require $(CURDIR)/spec/support/stryker-mocha12.cjs" npx stryker run $(MUTATION_ARGS)

sim: deps ## run the Datera simulator on 127.0.0.1:7717 (admin/password)
	npx tsx lib/sim/cli.ts --port 7717

cluster: deps plane ## a local 2-node cluster + Datera simulator, product installed; writes .cluster/kubeconfig
	spec/cluster/cluster.sh up

cluster-down: ## stop the local cluster; leaves no processes, mounts, loop devices or network devices
	spec/cluster/cluster.sh down

cluster-load: ## import IMAGE=<archive.tar> (OCI or docker format) into every node of the local cluster
	spec/cluster/cluster.sh load $(IMAGE)

demo: deps plane ## the 2016 PetSet walkthrough on a local control plane, simulator and provisioner
	npx tsx spec/cluster/demo.ts $(DEMO_ARGS)

bench: deps plane ## benchmarks against the Go peer; results in bench/results/
	npx tsx bench/run.ts $(BENCH_ARGS)

# Image archives built without Docker or a registry (manifests/image/build.ts); each is a
# docker-archive and an OCI layout in one tar. Downloads are cached in ~/.cache/datera-provisioner/image.
IMAGE_NAME ?= datera/k8s-provisioner
IMAGE_TAG ?= 0.1.0

image: deps ## build the product image archive .images/<name>-<tag>.tar (IMAGE_NAME, IMAGE_TAG)
	manifests/image/build.sh --name $(IMAGE_NAME) --tag $(IMAGE_TAG) product

node-images: deps ## build the local nodes' busybox:1.36 and pause:3.10 archives into .images/
	manifests/image/build.sh busybox pause

clean: ## remove build output and local state (not the cached control-plane build)
	rm -rf dist .cluster .demo .images coverage reports .stryker-tmp
