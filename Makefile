# Two commands for a newcomer:  `make run`  (set up, then start the app)
#                               `make test` (set up, then run every test, browser tests included)
# Both are idempotent: the virtual environment is rebuilt only when a requirements file changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
REQS   := requirements.txt requirements-dev.txt
STAMP  := $(VENV)/.installed-$(shell cat $(REQS) | cksum | cut -d' ' -f1)
PORT   ?= 8501

.PHONY: run test setup browser lint format bench web

setup: $(STAMP) web

# --no-compile: byte-compiling every file of torch at install costs ~25 s of a fresh clone's set-up;
# Python compiles what it imports, once, on first use.
$(STAMP): $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# onnxruntime-web for the in-browser decoder, from web/package-lock.json into static/ort/ (ignored
# by git); rebuilt only when the lock file changes. Without npm the sliders decode on the server.
WEB_STAMP := static/ort/.built-$(shell cat web/package-lock.json web/build.mjs | cksum | cut -d' ' -f1)

web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json web/build.mjs web/LICENSE-onnxruntime.txt
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: skipping onnxruntime-web (the sliders decode on the server)"; exit 0; }; \
	  cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && node build.mjs && touch ../$@

# Debian's Chromium for the Playwright browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: setup
	$(BIN)/python serve.py --server.port $(PORT)

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup browser
	$(BIN)/python -m benchmarks
