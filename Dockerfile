# syntax=docker/dockerfile:1.7
# One image for the whole bundle: every function, selected at run time by FUNCTION_TARGET.
# Build:  docker build -t <registry>/quill:<version> .
# Run:    docker run -e FUNCTION_TARGET=posts -e DATABASE_URL=… -e REDIS_URL=… -p 8080:8080 <image>
#
# The base is pinned by digest; bump tag and digest together (e.g. with Renovate).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# The project lives at /app in both stages: it is installed in editable mode, so the
# function entries (functions/<name>/main.py) and knative/routing.yaml are found beside it.
WORKDIR /app
RUN python -m venv /opt/quill
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY functions/quill/__init__.py functions/quill/__init__.py
RUN /opt/quill/bin/pip install --upgrade pip \
 && /opt/quill/bin/pip install .
COPY functions functions
RUN /opt/quill/bin/pip install --no-deps --force-reinstall --editable . \
 && /opt/quill/bin/python -m compileall -q /opt/quill/lib functions

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="quill" \
      org.opencontainers.image.description="RealWorld blog backend as Knative functions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/quill/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QUILL_ENV=prod \
    PORT=8080 \
    FUNCTION_TARGET=bundle
# A fixed, unprivileged user; the root filesystem can be mounted read-only (only /tmp is
# written, and the Knative Services mount an emptyDir there).
RUN groupadd --system --gid 65532 quill \
 && useradd --system --uid 65532 --gid quill --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin quill
WORKDIR /app
COPY --from=builder /opt/quill /opt/quill
COPY --from=builder /app/functions /app/functions
COPY knative/routing.yaml /app/knative/routing.yaml
COPY eventing /app/eventing
USER 65532:65532
EXPOSE 8080
# functions-framework's ASGI app for $FUNCTION_TARGET under uvicorn (uvloop + httptools),
# wrapped by `quill serve` for graceful pool shutdown; listens on $PORT.
ENTRYPOINT ["/bin/sh", "-c", "exec quill serve \"$FUNCTION_TARGET\" --host 0.0.0.0 --port \"$PORT\""]
