# FishCAM: two commands set everything up on a machine with only Python and pip.
#   make course            run the whole course headless (full mode); QUICK=1 for quick mode
#   make test              unit tests and every notebook under nbval, in quick mode; then the
#                          explorer's tests again under ipywidgets 7.7.1 (Colab's)
#   make test-unit         the unit tests alone, without notebooks, the browser and the slow ones (under 3 minutes)
#   make lint              ruff's checks (pyproject.toml [tool.ruff]); CI runs them before make test
#   make lab               JupyterLab on the notebooks
#   make student           write the student copies (notebooks/student/) after editing a notebook
#   make repoint REPO=URL  point the Colab badges and install cells at a fork (https://github.com/you/fishcam)
# Both create .venv and install the project when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUICK ?= 0
# Pin torch here if you must, e.g. make test TORCH="torch==2.14.1 torchvision==0.29.1".
TORCH ?=
# Test processes: 2 by default; JOBS=1 runs everything in one process.
JOBS ?= 2
STAMP := $(VENV)/.fishcam-installed

.PHONY: course test test-unit lint lab install data clean student repoint

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "FishCAM needs Python 3.10 or newer; $(PYTHON) is " + sys.version.split()[0] + ". Run make with PYTHON=python3.11 (or newer).")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(if $(TORCH),$(BIN)/python -m pip install $(TORCH))
	$(BIN)/python -m pip install --quiet "setuptools>=77"
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

data: $(STAMP)
	$(BIN)/fishcam make-data $(if $(filter 1 yes true,$(QUICK)),--quick)

course: $(STAMP)
	$(BIN)/fishcam course $(if $(filter 1 yes true,$(QUICK)),--quick)

# Colab's ipywidgets 7.7.1 beside JupyterLab's 8: put first on the path, it replaces 8 for one test run.
IPYWIDGETS7 := $(VENV)/ipywidgets7

$(IPYWIDGETS7)/.installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(IPYWIDGETS7) "ipywidgets==7.7.1" "ipython_genutils==0.2.0"
	@touch $@

# Quantus 0.6.0, a test-only reference for sparseness, complexity and the random-logit test (tests/explain/
# test_quantus.py): it requires the full opencv-python, which would replace the course's headless OpenCV in one
# environment, so it goes alone, without its dependencies (the course has them), into a folder of its own.
QUANTUS := $(abspath $(VENV))/quantus

$(QUANTUS)/.installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(QUANTUS) "quantus==0.6.0" "cachetools>=4"
	@touch $@

# The numeric tests (marker numeric: tolerances from float32 rounding, tests/numerics.py) run a second time on
# ATen's portable kernels, so a second kernel set is always tried: a tolerance that held on this machine's vector
# kernels alone would not be known to hold on another CPU's (about a minute on 2 cores).
# Left to the first run: four float64 whole-network loops (Score-CAM's and Ablation-CAM's against pytorch-grad-cam,
# Score-CAM's classes one by one, the registry's tour), 74 of the rerun's 137 s, whose float64 margins (10^3 and
# more) no kernel set comes near; CI must stay within 25 minutes.
NUMERIC_FIRST_RUN_ONLY = not scorecam and not method_added_in_one_place and not ablation_cam_equals_pytorch_grad_cam
# Two test processes share two cores, each with a kernel whose torch runs two OpenMP threads. Busy-waiting
# threads of one process then steal the core the other needs (training cells ran 2.5-4.5x slower); passive
# waiting keeps the thread count, so the numbers trained are the same, and gives the cores back.
# The student copies with you-write-it tasks run once more, tasks blank, after the rest: after, because each
# trains into the same run folders as its instructor copy (two at a time, as the notebooks do: no two train
# into the same folder, and the models they load are trained by then). (Copies without tasks hold the same code
# as their sources, which the first run covers; tests/course/test_student.py checks that.) Those of 01 and 05
# run blank under nbgrader's autograde instead (tests/course/test_nbgrader.py, marker nbgrader), which also checks that
# no cell but the checks' hidden tests fails there.
AUTOGRADED = notebooks/student/01_data_exploration.ipynb notebooks/student/05_gradcam_maths.ipynb
STUDENT_TASKS = $(filter-out $(AUTOGRADED),$(shell grep -l "YOUR CODE HERE" notebooks/student/*.ipynb))

test: $(STAMP) $(IPYWIDGETS7)/.installed $(QUANTUS)/.installed
	FISHCAM_QUICK=1 FISHCAM_QUANTUS=$(QUANTUS) OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest tests notebooks --ignore=notebooks/student \
		--nbval-lax --nbval-current-env -m "not nbgrader" $(if $(filter-out 0 1,$(JOBS)),-n $(JOBS) --dist loadfile)
	@echo "The numeric unit tests again, on the portable (non-vectorised) kernels:"
	FISHCAM_QUICK=1 FISHCAM_QUANTUS=$(QUANTUS) ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest tests -m numeric -q -k "$(NUMERIC_FIRST_RUN_ONLY)"
	@echo "The student copies, every task blank:"
	FISHCAM_QUICK=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest $(STUDENT_TASKS) --nbval-lax --nbval-current-env -q \
		$(if $(filter-out 0 1,$(JOBS)),-n $(JOBS) --dist loadfile)
	@echo "nbgrader: generate_assignment on every notebook, autograde on 05 and 01 (three submissions each):"
	FISHCAM_QUICK=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest tests -m nbgrader -q $(if $(filter-out 0 1,$(JOBS)),-n $(JOBS))
	@echo "The CAM explorer's tests again, under Colab's ipywidgets 7.7.1:"
	FISHCAM_QUICK=1 FISHCAM_EXPECT_IPYWIDGETS=7 PYTHONPATH=$(IPYWIDGETS7) $(BIN)/python -m pytest tests/widgets/test_widgets.py \
		-q -W "ignore::DeprecationWarning"

# The unit tests alone (tests/ mirrors the package's folders), for a quick answer while editing: notebooks, the
# real browser and the slow tests (markers notebook, browser, slow, nbgrader) are left to make test.
test-unit: $(STAMP) $(QUANTUS)/.installed
	FISHCAM_QUICK=1 FISHCAM_QUANTUS=$(QUANTUS) OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest tests -q \
		-m "not notebook and not browser and not slow and not nbgrader" $(if $(filter-out 0 1,$(JOBS)),-n $(JOBS) --dist loadfile)

# The ruff whose rules the code was last checked against: a newer one may add rules, and CI must not fail on a
# fresh machine for code that did not change. RUFF= another version to try one.
RUFF ?= 0.17.6
lint: $(STAMP)
	$(BIN)/python -m pip install --quiet "ruff==$(RUFF)"
	$(BIN)/ruff check .

# Student copies (notebooks/student/): every solution blanked, hidden tests removed; and notebooks/cheat_sheet.ipynb
# from docs/cheat_sheet.md. Run after editing a notebook or docs/cheat_sheet.md (cheat sheet, glossary, references).
student: $(STAMP)
	$(BIN)/python -m fishcam_utils.student

# The course's GitHub address is written once, in fishcam_utils/__init__.py; this rewrites everything made from it.
repoint:
	@test -n "$(REPO)" || { echo "usage: make repoint REPO=https://github.com/<you>/<fork>"; exit 2; }
	$(PYTHON) -m fishcam_utils.repository $(REPO)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf build .pytest_cache
