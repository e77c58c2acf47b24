# Set-up and entry points. `make serve` and `make test` are the two commands a new user runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH_CPU_VERSION ?= 2.13.0
DEMO_TEXT ?= Hello! This is realtime, a streaming text to speech server built on Kokoro.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve demo test lint clean-venv haproxy-trial image

# The stamp depends on pyproject.toml, so a second `make install` does nothing unless it changed.
install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV)
	@# Debian packages: libopus0 (Opus encoder), opus-tools (opusdec, the independent decoder the
	@# codec tests check Ogg Opus files with), chromium (the web client's browser tests) and
	@# haproxy (the balancer of deploy/haproxy, scripts/haproxy-trial and tests/deploy), podman,
	@# buildah, runc and debootstrap (the image's test builds the Dockerfile: tests/deploy), and g++
	@# and Python's headers (torch.compile builds the CPU's fused norm-and-Snake kernels with
	@# them: docs/engine.md).
	@missing=""; \
	ldconfig -p 2>/dev/null | grep -q libopus.so.0 || missing="$$missing libopus0"; \
	command -v opusdec >/dev/null || missing="$$missing opus-tools"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/sbin/haproxy || command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	for tool in podman buildah runc debootstrap; do \
	  command -v $$tool >/dev/null || test -x /usr/sbin/$$tool || missing="$$missing $$tool"; \
	done; \
	command -v g++ >/dev/null || command -v c++ >/dev/null || missing="$$missing g++"; \
	python3 -c 'import sysconfig,os,sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (Debian)"; \
	    (apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq $$missing >/dev/null)); \
	  else echo "warning:$$missing missing; install with your package manager"; fi; \
	fi
	@# Torch: a CUDA build where an NVIDIA driver is present, otherwise the CPU build.
	@if ! $(PY) -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then \
	    echo "NVIDIA GPU found: installing a CUDA build of torch"; $(PIP) install -q "torch>=2.4,<3"; \
	  else \
	    echo "no GPU: installing the CPU build of torch $(TORCH_CPU_VERSION)"; \
	    $(PIP) install -q "torch==$(TORCH_CPU_VERSION)" \
	      || $(PIP) install -q "torch==$(TORCH_CPU_VERSION)" --index-url https://download.pytorch.org/whl/cpu; \
	  fi; \
	fi
	$(PIP) install -q -e ".[bench,test,pipecat,livekit]"
	@touch $(STAMP)

serve: install
	$(VENV)/bin/realtime serve --host $(HOST) --port $(PORT)

demo: install
	$(VENV)/bin/realtime say "$(DEMO_TEXT)" -o demo.wav

# Two replicas behind HAProxy on loopback (docs/deploy.md); ARGS go to both replicas.
haproxy-trial: install
	$(PY) scripts/haproxy-trial $(ARGS)

test: lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check realtime tests load_tests scripts examples docker
	$(VENV)/bin/mypy realtime scripts/*.py examples/*.py docker/*.py
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

# The container image (Dockerfile) with docker or podman: TORCH=cpu (default) or cuda. The CPU
# torch wheel pip finds on this machine is used where there is one (docker/wheels); pip's CA
# bundle, if it has one, goes in as a build secret.
TORCH ?= cpu
IMAGE ?= realtime:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)-$(TORCH)
image: install
	@if docker info >/dev/null 2>&1; then engine=docker; \
	elif command -v podman >/dev/null; then engine=podman; \
	else echo "make image needs docker (with its daemon) or podman"; exit 1; fi; \
	args="--build-arg TORCH=$(TORCH) --build-arg TORCH_VERSION=$(TORCH_CPU_VERSION)"; \
	if [ "$(TORCH)" = cpu ] && $(PIP) download -q --no-deps --no-index \
	     "torch==$(TORCH_CPU_VERSION)" -d docker/wheels 2>/dev/null; then \
	  args="$$args --build-arg TORCH_INDEX=none"; fi; \
	cert=$$($(PIP) config list 2>/dev/null | sed -n "s/.*\.cert='\(.*\)'/\1/p" | head -1); \
	if [ -n "$$cert" ] && [ -f "$$cert" ]; then args="$$args --secret id=pip_ca,src=$$cert"; fi; \
	if [ $$engine = podman ]; then args="$$args --format docker --isolation chroot"; fi; \
	set -x; $$engine build $$args -t $(IMAGE) . && set +x && \
	$$engine image inspect --format '{{.Size}}' $(IMAGE) | \
	  awk '{printf "built $(IMAGE): %.2f GB\n", $$1 / 1e9}'

clean-venv:
	rm -rf $(VENV)
