# minigpt — every command a new user needs. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help install test train chat notebook notebooks exercises bench clean

help:  ## list the commands
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install requirements.txt and minigpt

test: $(STAMP)  ## run the whole test suite (gradient checks, training, notebooks)
	$(PY) -m pytest

train: $(STAMP)  ## train the chat model (preset "chat", <= 10 min on 2 cores) into out/chat/; ARGS="--max-iters 200" to override
	$(PY) -m minigpt train $(ARGS)

chat: $(STAMP)  ## talk to the model `make train` wrote (Ctrl-D to leave); ARGS="--temperature 0.8" to sample
	$(PY) -m minigpt chat $(ARGS)

bench: $(STAMP)  ## time a training step (vs PyTorch if installed) and generation
	$(PY) benchmarks/bench.py

notebooks: $(STAMP)  ## rebuild notebooks/*.ipynb and notebooks/zh/*.ipynb from notebooks/src/*.py and run them in full mode (~10 min: 06 trains the chat model once per edition)
	$(PY) notebooks/build.py notebooks

exercises: $(STAMP)  ## regenerate the student editions notebooks/exercises/ and notebooks/zh/exercises/ from the solution notebooks
	$(PY) notebooks/build.py exercises

notebook: $(STAMP)  ## open the notebooks in Jupyter (MINIGPT_QUICK=1 make notebook for short runs)
	$(VENV)/bin/jupyter notebook notebooks/

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis
