# The two commands of the README: `make run` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint catalogs extract bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) catalogs

catalogs: $(STAMP)
	$(BIN)/pybabel compile --statistics -d locales -D messages

## extract: refresh messages.pot and merge it into the three catalogs (then translate)
extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -o locales/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --ignore-obsolete --no-fuzzy-matching

run: install
	$(BIN)/memberbot db upgrade
	$(BIN)/memberbot serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: install lint
	$(BIN)/memberbot db upgrade
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/checkin.py
	$(BIN)/python bench/outbox.py --pushes 300

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis memberbot.db*
