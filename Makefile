# Two commands do all the set-up: `make test` and `make book`. Each creates .venv when missing.
PYTHON ?= python3
PROFILE ?= cpu
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.selmatch-installed

.PHONY: test book bench lesson test-lesson clean-book help

help:
	@echo "make test   - create .venv if needed, install selmatch, run the tests"
	@echo "make book   - create .venv if needed, execute the notebooks at PROFILE (default $(PROFILE)), build _build/html"
	@echo "make lesson - run every in-class exercise from a cold cache and record its time and answer (results/lesson.json)"
	@echo "make test-lesson - run them again and check each against its printed time and answer (not in CI)"
	@echo "make bench  - measure speed and memory against the official code's figures (benchmarks/, about an hour at --reps 3);"
	@echo "              OFFICIAL=<clone of Yongalls/SelMatch> also runs its distill.py end to end beside selmatch distill"

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[book,test,ray]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -q

book: $(STAMP)
	$(PY) -m selmatch.companion.book build --profile $(PROFILE)

lesson: $(STAMP)
	$(PY) -m selmatch.companion.lesson

test-lesson: $(STAMP)
	SELMATCH_LESSON=1 $(PY) -m pytest -q tests/test_lesson.py

bench: $(STAMP)
	$(PY) -m benchmarks $(if $(OFFICIAL),--official $(OFFICIAL))

clean-book:
	rm -rf _build
