# The course's commands. `make lab` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
NOTEBOOKS = $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: setup lab test data results student grade grade-check clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

lab: setup          ## open JupyterLab on the notebooks (as root too, as in Docker images and cloud machines)
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "make lab: running as root, so JupyterLab is started with --allow-root"; root_flag=--allow-root; \
	fi; \
	echo "make lab: JupyterLab serves notebooks/ from $(CURDIR); open the http://localhost:... URL it prints below"; \
	$(BIN)/jupyter lab $$root_flag notebooks/

test: setup         ## unit tests + every notebook through nbval, smoke profile
	NNUTILS_PROFILE=smoke $(BIN)/python -m pytest

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

grade-check: setup  ## autograde the solution, the untouched and a wrong version of every notebook (CI does 01 and 09)
	NNUTILS_GRADE_ALL=1 $(BIN)/python -m pytest -o addopts="-p no:cacheprovider" tests/test_classroom.py

clean:
	rm -rf $(VENV) results/smoke notebooks/artifacts
