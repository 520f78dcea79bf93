# Both targets create and reuse a local virtual environment in .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fusedem-installed

.PHONY: demo test venv sysdeps bench clean

$(STAMP): pyproject.toml
	bash tools/make_venv.sh $(PYTHON)
	touch $(STAMP)

venv: $(STAMP)

# System packages for a virtual screen (napari needs OpenGL); only as root on Debian.
sysdeps:
	@bash tools/install_sysdeps.sh

demo: $(STAMP)
	$(VENV)/bin/fusedem demo -o demo_output

test: $(STAMP) sysdeps
	bash tools/run_tests.sh

bench: $(STAMP)
	$(PY) benchmarks/bench_solver.py --quick
	$(PY) benchmarks/bench_batch.py --quick

clean:
	rm -rf $(VENV) demo_output build dist
