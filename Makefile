# kappa-iot: the two commands a newcomer needs are `make demo` and `make test`; both set up first.
.PHONY: setup demo test test-unit lint bench clean

PY := .venv/bin/python
KAPPA := .venv/bin/kappa

setup:  ## install system packages, the venv and the jars (idempotent)
	bash scripts/setup.sh

demo: setup  ## run the pipeline on the local stack and print its results
	$(KAPPA) demo

test: setup  ## lint, type-check, then every test (unit + integration on the real stack)
	$(PY) -m ruff check .
	$(PY) -m mypy
	.venv/bin/sqlfluff lint sql bench/sql
	mvn -q -B -f udfs/java/pom.xml test
	$(PY) -m pytest -v --durations=40

test-unit: setup  ## only the fast tests that need no services
	$(PY) -m pytest -m unit

lint: setup  ## ruff, mypy, and sqlfluff on the SQL (config: .sqlfluff)
	$(PY) -m ruff check .
	$(PY) -m mypy
	.venv/bin/sqlfluff lint sql bench/sql

bench: setup  ## benchmarks (print ratios against a baseline measured in the same run)
	@for b in bench/*.py; do echo "==> $$b"; $(PY) $$b || exit 1; done

clean:  ## stop the stacks and delete all local data (keeps the venv and jars)
	-$(KAPPA) stack down --purge
	-$(KAPPA) --profile test stack down --purge
