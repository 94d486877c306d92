# Two commands for a newcomer:  `make run`  (set up, then start the app)
#                               `make test` (set up, then run every test, browser tests included)
# Both are idempotent: the virtual environment is rebuilt only when a requirements file changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
REQS   := requirements.txt requirements-dev.txt
STAMP  := $(VENV)/.installed-$(shell cat $(REQS) | cksum | cut -d' ' -f1)
PORT   ?= 8501
REPLICAS ?= 3
# Debian installs haproxy in /usr/sbin, which is not on a normal user's PATH.
HAVE_HAPROXY := { command -v haproxy || test -x /usr/sbin/haproxy; } >/dev/null 2>&1

.PHONY: run test setup browser lint format bench web haproxy class

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

# Debian's Chromium for the Playwright browser tests (Playwright cannot download browsers here),
# and Debian's HAProxy for the tests of `make class` (tests/test_deploy.py), in one apt-get.
browser:
	@MISSING=""; command -v chromium >/dev/null 2>&1 || MISSING="chromium"; \
	  $(HAVE_HAPROXY) || MISSING="$$MISSING haproxy"; \
	  [ -z "$$MISSING" ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$MISSING >/dev/null; }

# `make class`: a class on one machine, REPLICAS app processes on loopback (ports PORT+1 ...)
# behind HAProxy on PORT with cookie-sticky sessions, all sharing the user-checkpoint folder
# (LATENTLAB_USER_CHECKPOINTS, default user_checkpoints/). Ctrl-C stops it. See deploy/.
haproxy:
	@$(HAVE_HAPROXY) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq haproxy >/dev/null; }

class: setup haproxy
	$(BIN)/python -m deploy.class_server --replicas $(REPLICAS) --port $(PORT)

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
