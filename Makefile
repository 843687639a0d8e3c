# Thin wrappers; the work is done by the scripts they call.
#   make setup   venv + pinned dependencies + colcon build of the interfaces (idempotent)
#   make build   rebuild the colcon workspace
#   make test    the pytest suite, discovery restricted to this machine
#   make demo    the pipeline on two real photos -> demo_out/ (tiny RANDOM model unless
#                CHECKPOINT_DIR / AFFORDANCE_CHECKPOINT_DIR / CLIP_DIR / DEVICE are set)
#   make docs    regenerate docs/reference/ and build the site offline -> docs/_build/html
#                (sphinx-build -W: a warning, e.g. a broken link, fails)
#   make clean   remove build outputs (keeps .venv)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
WS := ros2_ws

REQUIREMENTS := $(WS)/requirements-kilted.txt interactvlm_ros/requirements.txt interactvlm_ros/requirements-test.txt
# installed without their declared dependencies (the file says why): MediaPipe's BlazePose
NODEPS_REQUIREMENTS := interactvlm_ros/requirements-nodeps.txt
DEPS_STAMP := $(VENV)/.interactvlm-deps
BUILD_STAMP := $(WS)/install/.interactvlm-built
WS_SOURCES := $(shell find msgs launch $(WS)/compat $(WS)/cmake $(WS)/build.sh -type f 2>/dev/null)

.PHONY: setup build test demo docs clean

setup: $(BUILD_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): $(REQUIREMENTS) $(NODEPS_REQUIREMENTS) interactvlm_ros/setup.py | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install $(addprefix -r ,$(REQUIREMENTS))
	$(VENV)/bin/python -m pip install --no-deps -r $(NODEPS_REQUIREMENTS)
	$(VENV)/bin/python -m pip install --no-deps -e interactvlm_ros
	touch $@

$(BUILD_STAMP): $(DEPS_STAMP) $(WS_SOURCES)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(WS)/build.sh
	touch $@

build: $(DEPS_STAMP)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(WS)/build.sh
	touch $(BUILD_STAMP)

test: $(BUILD_STAMP)
	tests/run.sh $(PYTEST_ARGS)

DEMO_ARGS := $(if $(CHECKPOINT_DIR),--checkpoint-dir $(CHECKPOINT_DIR)) \
	$(if $(AFFORDANCE_CHECKPOINT_DIR),--affordance-checkpoint-dir $(AFFORDANCE_CHECKPOINT_DIR)) \
	$(if $(CLIP_DIR),--clip-dir $(CLIP_DIR)) $(if $(DEVICE),--device $(DEVICE)) \
	$(if $(BODY_MODEL),--body-model $(BODY_MODEL)) $(if $(BODY_MODEL_DIR),--body-model-dir $(BODY_MODEL_DIR))

demo: $(BUILD_STAMP)
	rm -rf demo_out
	. $(WS)/env.sh && interactvlm-ros demo demo_out $(DEMO_ARGS)

docs: $(BUILD_STAMP)
	. $(WS)/env.sh && python scripts/gen_docs.py && sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(WS)/build $(WS)/install $(WS)/log docs/_build
