# 一网通办 approvals suite. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
# uv from python3, or a copy of its own where python3's environment is externally managed (tools/uv).
UV := tools/uv
PYTEST_ARGS ?=
role ?= enterprise
uscc ?=
jurisdiction ?=
name ?=
to ?=
id_number ?=
# pytest-xdist workers of `make test`: more than the 2 cores, since tests wait on PostgreSQL and sockets.
TEST_WORKERS ?= 4
# 0: the fault tests run after the rest, alone; 1: at the same time as the rest, at a higher
# priority (saves their minute; under a load of ~30 from other sessions two of the eight missed
# their one-second recovery bound, so 0 until measured on an idle machine).
FAULTS_ALONGSIDE ?= 0

.PHONY: help setup test-tools uscc keys run test lint format token bench bench-latency bench-lifecycle bench-peer bench-instructions bench-queue bench-notify bench-draw bench-seal bench-rss up down clean seal

help:
	@echo "make run     all three services on SQLite (data/), demo catalogue loaded"
	@echo "make test    the whole suite on PostgreSQL and SQLite"
	@echo "make token role=enterprise uscc=91350100M000100Y43   a development bearer token"
	@echo "make token role=enterprise uscc=random   the same for a new random enterprise (its USCC on stderr)"
	@echo "make uscc    a random valid 统一社会信用代码"
	@echo "make seal uscc=91350100M000100Y43 [name=...] [kind=法定代表人章]   a development electronic seal (SM2 key + certificate)"
	@echo "make seal id_number=110101199003070011 name=张小三   a development personal signing key (个人签名)"
	@echo "make lint    ruff format check, ruff, mypy, the import-layer contract"
	@echo "make bench   submission throughput against the bare-ORM ceiling (PostgreSQL)"
	@echo "make bench-latency     submit → the applicant's inbox, one at a time (PostgreSQL, relay in its own process)"
	@echo "make bench-lifecycle   submit → accept → review → approve cases per second (PostgreSQL)"
	@echo "make bench-peer        bench-lifecycle against SpiffWorkflow in process, alternating rounds, ratio of medians"
	@echo "make bench-instructions   instructions per request under callgrind (steady on a noisy machine)"
	@echo "make bench-queue       staff work queue p50/p99 at 10k and 1M applications (PostgreSQL)"
	@echo "make bench-notify      events → inbox and email deliveries per second"
	@echo "make bench-draw        a 双随机 inspection draw over 100k licence holders (PostgreSQL)"
	@echo "make bench-seal        CPU per sealed document (against main) and the drain rate of 2 sealers (PostgreSQL)"
	@echo "make bench-rss         each service's resident memory once started and idle, as make run starts it"
	@echo "make keys out=../onestop-keys/2026-12 generation=2026-12 [previous=services-jwks.json] [idp=idp-jwks.json] [seal=1]   production keys, outside the checkout (deploy/README.md, Keys)"
	@echo "make up      the suite in containers (deploy/compose.yml): PostgreSQL, migrations, web, workers, Mailpit"
	@echo "make down    stop and remove those containers (volumes kept)"

setup:
	@$(UV) sync --locked --quiet

run: setup
	@$(UV) run --locked python -m tools.suite run

# Chromium and docker-compose, which some tests drive, installed when missing (tools/test-tools.sh).
test-tools:
	@bash tools/test-tools.sh

# In parallel (pytest-xdist): each worker makes its own uniquely named databases, ports and temporary
# folders, and each service's database and app once per backend (govshared.testing.PerWorker).
# Tests are isolated per test (the tables are emptied after each, govshared.testing.CleanTables), so
# they are handed out one by one to whichever worker is free (--dist loadgroup); only the tests that
# share a module-scoped fixture (the end-to-end suites, the services under fuzzing) stay together,
# one group per file and backend (conftest.py). The slowest (contract, end-to-end, deploy) go
# first, in the order given here (--no-loadscope-reorder). The fault tests, which cut a running
# suite's databases off under load, run in a pytest of their own (their processes, ports and
# databases are their own): after the rest, or with FAULTS_ALONGSIDE=1 at the same time, at a
# higher priority than the rest (nice), since they time how fast the services come back (within a
# second); their output then follows the other's.
# Bytecode is cached (__pycache__, ignored by git) even where the environment says
# PYTHONDONTWRITEBYTECODE: every worker and every service process a test starts imports the same
# modules, and compiling them again in each was half the CPU of a worker's start and collection
# (16 s against 7 s, measured).
FAULTS_RUN = $(UV) run --locked pytest tests/faults -m faults -p no:cacheprovider \
	$(PYTEST_ARGS)
test: export PYTHONDONTWRITEBYTECODE :=
test: setup test-tools
	@faults_log=$$(mktemp); \
	if [ "$(FAULTS_ALONGSIDE)" = 1 ]; then \
		$(FAULTS_RUN) >"$$faults_log" 2>&1 & faults=$$!; \
		trap 'kill $$faults 2>/dev/null; rm -f "$$faults_log"; exit 130' INT TERM; \
	fi; \
	nice -n $(if $(filter 1,$(FAULTS_ALONGSIDE)),10,0) $(UV) run --locked pytest \
		tests/contract tests/e2e tests/deploy tests/inprocess shared services -m "not faults" \
		-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS); \
	status=$$?; \
	if [ "$(FAULTS_ALONGSIDE)" = 1 ]; then \
		wait $$faults; faults_status=$$?; \
		echo "== tests/faults (run alongside) =="; cat "$$faults_log"; \
	else \
		$(FAULTS_RUN); faults_status=$$?; \
	fi; \
	rm -f "$$faults_log"; \
	test $$status -eq 0 && test $$faults_status -eq 0

lint: setup
	$(UV) run --locked ruff format --check .
	$(UV) run --locked ruff check .
	$(UV) run --locked mypy shared/src services/approval/src services/license/src services/notify/src
	$(UV) run --locked lint-imports

format: setup
	$(UV) run --locked ruff format .
	$(UV) run --locked ruff check --fix .

uscc: setup
	@$(UV) run --locked python -m govshared.uscc

token: setup
	@$(UV) run --locked python -m govshared.devtoken --role "$(role)" \
		$(if $(uscc),--uscc "$(uscc)") $(if $(jurisdiction),--jurisdiction "$(jurisdiction)") \
		$(if $(department),--department "$(department)") $(if $(sub),--sub "$(sub)") \
		$(if $(to),--to "$(to)")

seal: setup
	@test -n "$(uscc)$(id_number)" || { echo "usage: make seal uscc=<统一社会信用代码> [name=<企业名称>] [kind=法定代表人章]  |  make seal id_number=<身份证号码> name=<姓名>"; exit 2; }
	@$(UV) run --locked python -m govshared.signing.devca \
		$(if $(id_number),person --id-number "$(id_number)" --name "$(name)",issue --uscc "$(uscc)" \
		$(if $(name),--name "$(name)") $(if $(kind),--kind "$(kind)"))

keys: setup
	@$(UV) run --locked python -m tools.keys --out "$(out)" --generation "$(generation)" \
		$(if $(previous),--previous "$(previous)") $(if $(idp),--idp "$(idp)") $(if $(seal),--seal) \
		$(if $(allow_in_repo),--allow-in-repo)

bench: setup
	$(UV) run --locked python bench/submission.py

bench-latency: setup
	$(UV) run --locked python bench/latency.py

bench-lifecycle: setup
	$(UV) run --locked python bench/lifecycle.py

bench-peer: setup
	$(UV) run --locked python bench/peer_spiff.py --against-lifecycle

bench-instructions: setup
	$(UV) run --locked python bench/instructions.py

bench-queue: setup
	$(UV) run --locked python bench/staff_queue.py

bench-notify: setup
	$(UV) run --locked python bench/notify_throughput.py
	$(UV) run --locked python bench/notify_throughput.py --database-url postgresql

bench-draw: setup
	$(UV) run --locked python bench/inspection_draw.py

bench-seal: setup
	$(UV) run --locked python bench/sealing.py

bench-rss: setup
	$(UV) run --locked python bench/idle_rss.py --modules

COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

up:
	$(COMPOSE) -f deploy/compose.yml -p onestop up -d --build

down:
	$(COMPOSE) -f deploy/compose.yml -p onestop down --remove-orphans

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache
