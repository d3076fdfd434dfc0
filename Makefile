# The two commands: `make run` starts the whole system here (no Docker), `make test` runs every test.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint format down clean smoke smoke-prod fuzz chaos bench seed compose-proof lock operator

setup: ## install what is missing: Debian packages (postgresql, redis, nginx) and the virtualenv
	./scripts/setup.sh

run: setup ## the whole system: APIs on 8007-8009, gateway 8080, Flower 5555, mail inbox 8025
	$(BIN)/python scripts/devstack.py up

test: setup lint ## unit, integration and end-to-end tests against real PostgreSQL, Redis, Celery, SMTP and nginx
	$(BIN)/pytest

lint: ## ruff (lint and format), mypy (strict, the files in pyproject.toml) and actionlint (the CI workflow)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if [ -x $(BIN)/actionlint ]; then echo "$(BIN)/actionlint"; $(BIN)/actionlint; \
	else echo "lint: actionlint is not installed (requirements/lint.txt): .github/workflows NOT checked"; fi

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

down: ## stop the PostgreSQL and Redis that `make run` started
	$(BIN)/python scripts/devstack.py down

clean: ## stop the stack and remove .run (as root, also PostgreSQL's files outside the checkout)
	$(BIN)/python scripts/devstack.py clean

smoke: ## the contract's calls with assertions against a FRESH `make run` or `docker compose up` (ports: DEVSTACK_*_PORT or SMOKE_*_URL)
	./scripts/smoke.sh dev

smoke-prod: ## the same through the production gateway, inbox not read (SMOKE_GATEWAY_URL, default http://127.0.0.1)
	./scripts/smoke.sh prod

fuzz: setup ## schemathesis against every service's OpenAPI schema, directly and through the gateway
	$(BIN)/python scripts/fuzz.py

chaos: setup ## faults while registrations flow (killed workers, Redis and PostgreSQL restarts, SMTP down, silent or slow); writes docs/chaos.md (CHAOS_FLAGS: --only smtp, --out)
	$(BIN)/python scripts/chaos.py $(CHAOS_FLAGS)

bench: ## throughput and latency against ceilings, on an empty database and seeded ones; writes docs/benchmarks.md (BENCH_FLAGS: --sizes, --seconds, --out)
	./scripts/setup.sh bench
	$(BIN)/python scripts/bench/bench.py $(BENCH_FLAGS)

operator: ## give the account EMAIL the operator role on make run's system (make operator EMAIL=ann@example.com; REVOKE=1 takes it back)
	@test -n "$(EMAIL)" || { echo "make operator EMAIL=<the account's email>"; exit 2; }
	$(BIN)/python scripts/devstack.py run python -m users_svc.operators $(if $(REVOKE),revoke,grant) "$(EMAIL)"

seed: setup ## EMPTIES make run's databases and loads the history of USERS users in bulk (make seed USERS=100000)
	$(BIN)/python scripts/bench/seed.py --users $(USERS)

compose-proof: ## both compose files built and run from nothing and smoke-tested; real images (STANDINS=1: dockerkit's stand-ins)
	$(if $(STANDINS),COMPOSE_PROOF_IMAGES=standin )./scripts/compose-proof.sh

# The images and the virtualenv install from these locks only (pip --require-hashes): every
# transitive requirement pinned, with the hashes of its files on PyPI, for Python 3.11 on any
# platform. Kept where they are unless requirements/*.txt asks otherwise; LOCK_FLAGS=--upgrade
# moves every unpinned (transitive) requirement to its newest release.
LOCK := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock" $(LOCK_FLAGS)
lock: setup ## refresh requirements/*.lock from requirements/*.txt (LOCK_FLAGS=--upgrade for newer transitive releases)
	$(LOCK) requirements/base.txt -o requirements/base.lock
	$(LOCK) requirements/dev.txt -c requirements/base.lock -o requirements/dev.lock
	$(LOCK) requirements/bench.txt -c requirements/dev.lock -o requirements/bench.lock
