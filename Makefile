# sso-bridge: `make run` and `make test` set everything up themselves (.venv, Chromium for browser tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is Python 3.13: use it for the venv too. pyenv's shim answers only when the version is
# selected, and `sam build` looks for `python3.13` on PATH.
export PYENV_VERSION ?= 3.13.0:3.11.7
PYTHON ?= $(shell PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export AWS_DEFAULT_REGION ?= eu-west-1
export SAM_CLI_TELEMETRY := 0
STACK_NAME ?= sso-bridge

.PHONY: help venv run test lint typecheck validate build deploy unit integration e2e build-test bench chromium \
	login-token audit clean

help:
	@echo "make run        local stack on http://localhost:$${PORT:-3000} (no AWS account, no Docker)"
	@echo "make test       every check and test: lint, types, template, unit, integration, browser, build"
	@echo "make build      sam build            make validate   sam validate --lint and cfn-lint"
	@echo "make deploy     sam deploy           make bench      benchmarks"
	@echo "make login-token EMAIL=you@example.com AUD=clickfunnels   mint a login token for the local stack"
	@echo "make audit EMAIL=jane@example.com | JTI=...  [JSON=1] [LOCAL=1]   issued HappyFox tokens"

$(VENV)/.installed: pyproject.toml layers/signing/requirements.txt
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q --disable-pip-version-check -r layers/signing/requirements.txt --group dev
	@touch $@

venv: $(VENV)/.installed

# Debian's Chromium for the browser tests; never a browser download from a test tool.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: venv
	$(BIN)/python -m local.stack

# Issued HappyFox tokens: make audit EMAIL=jane@example.com | JTI=... [JSON=1] (JTI_TABLE_NAME, AWS_ENDPOINT_URL).
# LOCAL=1 reads the running local stack's table instead of AWS.
LOCAL_AUDIT_ENV := AWS_ENDPOINT_URL=http://127.0.0.1:$${LOCAL_AWS_PORT:-4566} AWS_ACCESS_KEY_ID=local \
	AWS_SECRET_ACCESS_KEY=local AWS_SESSION_TOKEN=local JTI_TABLE_NAME=sso-bridge-JtiTable
audit: venv
	@$(if $(LOCAL),$(LOCAL_AUDIT_ENV)) $(BIN)/python -m ops.audit \
		$(if $(EMAIL),--email="$(EMAIL)") $(if $(JTI),--jti="$(JTI)") $(if $(JSON),--json)

login-token: venv
	@$(BIN)/python -m local.mint_login_token --email "$(EMAIL)" --aud "$(or $(AUD),clickfunnels)"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy layers/signing/sso_bridge
	$(BIN)/mypy functions local ops

validate: venv
	$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml

build: venv
	$(BIN)/sam build --cached --parallel

deploy: build
	$(BIN)/sam deploy

unit: venv
	$(BIN)/pytest tests/unit

integration: venv
	$(BIN)/pytest tests/integration

e2e: venv chromium
	$(BIN)/pytest tests/e2e

build-test: build
	$(BIN)/pytest tests/artifacts

test: venv chromium lint typecheck validate build
	$(BIN)/pytest

bench: venv
	$(BIN)/python -m benchmarks

clean:
	rm -rf .aws-sam $(VENV) .mypy_cache .ruff_cache
