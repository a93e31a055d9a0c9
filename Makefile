# `make run` and `make test` bootstrap everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-peers clean browser-deps claude-code-deps

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/eldric-cloudd $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Headless Chromium for the dashboard's browser test (tests/dashboard/test_browser.py):
# Debian's chromium and chromium-driver; and Debian's nginx-light for the load-balancer test
# (tests/instances/test_nginx.py). Installed when missing and this user can (root or
# sudo); otherwise those tests are skipped, or fail under ELDRIC_REQUIRE_SERVICES=1 (CI).
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
	  && { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver nginx-light; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver nginx-light; \
	else echo "browser-deps: cannot install chromium, chromium-driver and nginx-light here (no root); their tests will skip"; fi

# Claude Code for its end-to-end test (tests/e2e/test_claude_code.py), pinned, from npm, into
# var/claude-code/ (never global). Skipped without npm, or fails under ELDRIC_REQUIRE_SERVICES=1.
CLAUDE_CODE_VERSION := 2.1.332
CLAUDE_CODE := var/claude-code/node_modules/@anthropic-ai/claude-code/package.json
claude-code-deps:
	@if grep -qs '"version": "$(CLAUDE_CODE_VERSION)"' $(CLAUDE_CODE); then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  mkdir -p var/claude-code && npm install --silent --no-audit --no-fund --prefix var/claude-code \
	    @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION); \
	else echo "claude-code-deps: npm not found; the Claude Code test will skip"; fi

test: $(STAMP) lint browser-deps claude-code-deps
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

# eldric-cloudd beside nginx, Portkey and LiteLLM in one run (about 15 minutes). The harness
# installs the peers into var/bench-peers/, never into .venv.
PEER_BENCH ?= ../shared/peer-bench
PEER_SUBJECTS ?= direct,nginx-proxy,eldric-daphne,eldric-uvicorn,portkey,litellm-w1
PEER_RUNS ?= run1
# The harness gives eldric-cloudd three backends, one more than Free allows: a bench-only signing
# key and Enterprise license are made in var/bench-peers/license/ (never trusted elsewhere).
BENCH_LICENSE := var/bench-peers/license
bench-peers: $(STAMP)
	@test -f $(PEER_BENCH)/run.sh || { echo "bench-peers: no harness at $(PEER_BENCH) (set PEER_BENCH=path)"; exit 2; }
	rm -rf $(BENCH_LICENSE) && mkdir -p $(BENCH_LICENSE)
	ELDRIC_DATA_DIR=$(BENCH_LICENSE)/data $(BIN)/python manage.py license_keygen \
	  --private-key $(BENCH_LICENSE)/signing.key > $(BENCH_LICENSE)/public.txt
	ELDRIC_DATA_DIR=$(BENCH_LICENSE)/data $(BIN)/python manage.py license_issue --private-key $(BENCH_LICENSE)/signing.key \
	  --org default --tier enterprise --days 2 --out $(BENCH_LICENSE)/license.json
	ELDRIC_LICENSE_PUBLIC_KEYS=$$(cat $(BENCH_LICENSE)/public.txt) ELDRIC_LICENSE_FILE=$(abspath $(BENCH_LICENSE))/license.json \
	  ELDRIC_SRC=. RUNS="$(PEER_RUNS)" bash $(PEER_BENCH)/run.sh --subjects $(PEER_SUBJECTS) $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
