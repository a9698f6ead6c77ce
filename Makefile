# The course's commands. `make lab` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
NOTEBOOKS = $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# The Keras backend of `make test` and `make lab`: tensorflow (the default), jax or torch (README, "Backends").
# `make test BACKEND=jax` picks one; so does KERAS_BACKEND in the environment.
BACKEND ?= $(or $(KERAS_BACKEND),tensorflow)
# Notebooks that need TensorFlow installed on every backend, for a TensorFlow tool their lesson cannot do without
# (README, "Backends"). None today: the cells about tf.data, TextVectorization or tf.reverse_sequence run on
# TensorFlow only (config.requires) and are skipped elsewhere.
NEEDS_TENSORFLOW =
WITHOUT_TF_NOTEBOOKS = $(filter-out $(addprefix notebooks/,$(addsuffix .ipynb,$(NEEDS_TENSORFLOW))),$(NOTEBOOKS))
WITH_TF_NOTEBOOKS = $(filter-out $(WITHOUT_TF_NOTEBOOKS),$(NOTEBOOKS))
# Two pytest workers; a file (a notebook's cells, a test module's fixtures) stays on one worker, and files are
# handed out in the order of the command line (xdist would otherwise reorder them by their number of tests).
XDIST = -n 2 --dist loadfile --no-loadscope-reorder
# That order is longest first, so that no long file starts last on a worker that is otherwise done: the
# classroom grading (TensorFlow only), the notebooks slowest in smoke, the unit tests, then the other notebooks.
SLOWEST = 09_bert_gpt 08_transformer 03_resnet 06_birnn
# (The test modules are named one by one: pytest would collect a file before the folder that holds it in
# the folder's order.)
UNIT_TESTS = $(filter-out tests/test_classroom.py,$(sort $(wildcard tests/test_*.py)))
longest_first = tests/test_classroom.py $(foreach nb,$(SLOWEST),$(filter %/$(nb).ipynb,$(1))) $(UNIT_TESTS) \
  $(filter-out $(patsubst %,\%/%.ipynb,$(SLOWEST)),$(1))
BACKEND_SETUP = $(if $(filter-out tensorflow,$(BACKEND)),setup-backends)
# Smoke runs on JAX spend more time compiling than computing: XLA's cheaper optimisation cut 08's JAX smoke run by
# a third on a 2-core CPU, run back to back with and without (README, "Tests"); 03's did not change, nor did 08's
# on TensorFlow. Only smoke tests on JAX use it: results, full runs and `make lab` compile as usual.
SMOKE_XLA_FLAGS = --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true
jax_smoke = XLA_FLAGS="$(strip $(XLA_FLAGS) $(SMOKE_XLA_FLAGS))"

.PHONY: setup setup-backends lab test test-backends data results student grade grade-check clean \
        print-without-tf-notebooks print-with-tf-notebooks

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup-backends: $(VENV)/.installed-backends   ## JAX and PyTorch beside TensorFlow (requirements-backends.txt)

$(VENV)/.installed-backends: requirements-backends.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-backends.txt
	touch $@

lab: setup $(BACKEND_SETUP)          ## open JupyterLab on the notebooks (as root too, as in Docker images and cloud machines)
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "make lab: running as root, so JupyterLab is started with --allow-root"; root_flag=--allow-root; \
	fi; \
	echo "make lab: JupyterLab serves notebooks/ from $(CURDIR); open the http://localhost:... URL it prints below"; \
	KERAS_BACKEND=$(BACKEND) $(BIN)/jupyter lab $$root_flag notebooks/

test: setup $(BACKEND_SETUP)  ## unit tests + every notebook through nbval, smoke profile, on BACKEND (tensorflow)
	$(if $(filter jax,$(BACKEND)),$(jax_smoke)) KERAS_BACKEND=$(BACKEND) NNUTILS_PROFILE=smoke \
	  $(BIN)/python -m pytest $(XDIST) $(call longest_first,$(NOTEBOOKS))

test-backends: setup setup-backends  ## CI: the Keras unit tests on torch; on jax, the unit tests and the notebooks (TF hidden)
	KERAS_BACKEND=torch NNUTILS_PROFILE=smoke $(BIN)/python -m pytest $(XDIST) -m "not backend_independent" tests
	PYTHONPATH=$(CURDIR)/tools/without_tensorflow $(jax_smoke) KERAS_BACKEND=jax NNUTILS_PROFILE=smoke \
	  $(BIN)/python -m pytest $(XDIST) -m "not backend_independent" $(call longest_first,$(WITHOUT_TF_NOTEBOOKS))
	$(if $(WITH_TF_NOTEBOOKS),$(jax_smoke) KERAS_BACKEND=jax NNUTILS_PROFILE=smoke \
	  $(BIN)/python -m pytest $(XDIST) $(WITH_TF_NOTEBOOKS))

data: setup         ## fetch and verify every data set into the Keras cache (for offline use)
	$(BIN)/python -m nnutils.data

results: setup      ## run every notebook in the full profile, in place, and rebuild the README's results table
	for nb in $(NOTEBOOKS); do \
	  NNUTILS_PROFILE=full $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 $$nb || exit 1; \
	done
	$(BIN)/python tools/clean_outputs.py $(NOTEBOOKS)
	$(BIN)/python -m nnutils.report

student: setup      ## the student version of every notebook into student/ (nbgrader generate_assignment, outputs kept)
	$(BIN)/python tools/classroom.py student

grade: setup        ## autograde course/submitted/<student>/<NN_topic>/<NN_topic>.ipynb (smoke unless NNUTILS_PROFILE=full)
	$(BIN)/python tools/classroom.py grade

grade-check: setup  ## autograde the solution, the untouched and a wrong version of every notebook (CI does 01 and 07)
	NNUTILS_GRADE_ALL=1 $(BIN)/python -m pytest -o addopts="-p no:cacheprovider" tests/test_classroom.py

print-without-tf-notebooks:  # for the GPU workflow: the notebooks that run with TensorFlow not installed
	@echo $(WITHOUT_TF_NOTEBOOKS)

print-with-tf-notebooks:     # ... and those that use a TensorFlow tool
	@echo $(WITH_TF_NOTEBOOKS)

clean:
	rm -rf $(VENV) results/smoke notebooks/artifacts
