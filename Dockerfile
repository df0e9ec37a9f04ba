# One image for the whole bundle: every function, selected at run time by FUNCTION_TARGET.
# It installs only what requirements/runtime.lock pins, from a wheelhouse prepared beside
# this file, checked by hash, with no index and no network (docs/deploy.md):
#   python -m tests.image.engine wheels    # pip download of the lock's lines for CPython 3.11 on Linux
#   docker build --network none -t quill .
# Run (the image is QUILL_ENV=prod, so posts needs the token-verifying public key; make one
# with `openssl genpkey -algorithm ed25519 -out private.pem && openssl pkey -in private.pem
# -pubout -out public.pem`, and migrate the database first with the same image):
#   docker run --rm -e DATABASE_URL=postgresql://… quill migrate
#   docker run --rm -e FUNCTION_TARGET=posts -e DATABASE_URL=postgresql://… -e REDIS_URL=redis://… \
#     -e JWT_PUBLIC_KEYS="$(cat public.pem)" --read-only --tmpfs /tmp -p 8080:8080 quill
#
# The base is pinned by digest; bump tag and digest together (e.g. with Renovate). Its
# CPython minor version must match the lock's and the wheelhouse's (3.11).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CONFIG_FILE=/dev/null PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# The installer is the base's own bundled pip (ensurepip: no download, no upgrade), in a
# venv of its own; the runtime venv gets no pip, setuptools or pkg_resources at all.
RUN python -m venv /opt/pip \
 && python -m venv --without-pip /opt/quill
COPY requirements/runtime.lock requirements/runtime.lock
COPY wheels /wheels
# --no-deps: the lock is the whole list (it leaves out, on purpose, the packages no
# function runs; see requirements/lock).
RUN /opt/pip/bin/pip --python /opt/quill/bin/python install --no-index --find-links /wheels \
      --require-hashes --only-binary=:all: --no-deps -r requirements/runtime.lock
# The runtime package `quill` and the function entries (functions/<name>/); .dockerignore
# keeps the dev and ops tooling (functions/quill_tools) out of the context, so out of the image.
COPY functions functions
# Quill itself is source on the path, as an editable install puts it: the function entries
# (functions/<name>/main.py), knative/routing.yaml and eventing/ are found beside the
# package. So the build needs no build backend. `quill` is the image's own command,
# quill.cli (serve and migrate only), not the console script pip writes (quill_tools.cli).
RUN purelib="$(/opt/quill/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && echo /app/functions > "$purelib/quill.pth" \
 && printf '#!/opt/quill/bin/python\nimport sys\n\nfrom quill.cli import main\n\nsys.exit(main())\n' > /opt/quill/bin/quill \
 && chmod 0755 /opt/quill/bin/quill \
 && /opt/quill/bin/python -m compileall -q functions

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
# written, and the Knative Services mount an emptyDir there). The base interpreter's own
# installers go too: nothing in the running container can install a package.
RUN groupadd --system --gid 65532 quill \
 && useradd --system --uid 65532 --gid quill --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin quill \
 && rm -rf /usr/local/bin/pip* /usr/local/lib/python3*/site-packages/pip /usr/local/lib/python3*/site-packages/pip-* \
      /usr/local/lib/python3*/site-packages/setuptools* /usr/local/lib/python3*/site-packages/pkg_resources \
      /usr/local/lib/python3*/site-packages/_distutils_hack /usr/local/lib/python3*/site-packages/distutils-precedence.pth \
      /usr/local/lib/python3*/site-packages/wheel* /usr/local/lib/python3*/ensurepip /usr/lib/python3*/ensurepip \
      /usr/share/python-wheels
WORKDIR /app
COPY --from=builder /opt/quill /opt/quill
COPY --from=builder /app/functions /app/functions
COPY knative/routing.yaml /app/knative/routing.yaml
COPY eventing /app/eventing
USER 65532:65532
EXPOSE 8080
# With no arguments, `quill serve`: functions-framework's ASGI app for $FUNCTION_TARGET under
# uvicorn (uvloop + httptools), closing the pools on SIGTERM; listens on $PORT. Arguments are
# a quill command (`docker run … quill migrate`); a Job's `command: ["quill", "migrate"]`
# replaces the entrypoint outright.
ENTRYPOINT ["/bin/sh", "-c", "[ $# -gt 0 ] || exec quill serve \"$FUNCTION_TARGET\" --host 0.0.0.0 --port \"$PORT\"; exec quill \"$@\"", "quill"]
