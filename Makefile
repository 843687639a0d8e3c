# Thin wrappers; the work is done by the scripts they call.
#   make setup   venv + pinned dependencies + colcon build of the interfaces (idempotent)
#   make build   rebuild the colcon workspace
#   make test    the pytest suite, discovery restricted to this machine
#   make clean   remove build outputs (keeps .venv)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
WS := ros2_ws

REQUIREMENTS := $(WS)/requirements-kilted.txt interactvlm_ros/requirements.txt
DEPS_STAMP := $(VENV)/.interactvlm-deps
BUILD_STAMP := $(WS)/install/.interactvlm-built
WS_SOURCES := $(shell find msgs launch $(WS)/compat $(WS)/cmake $(WS)/build.sh -type f 2>/dev/null)

.PHONY: setup build test clean

setup: $(BUILD_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): $(REQUIREMENTS) interactvlm_ros/setup.py | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install $(addprefix -r ,$(REQUIREMENTS))
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

clean:
	rm -rf $(WS)/build $(WS)/install $(WS)/log
