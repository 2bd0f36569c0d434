# syntax=docker/dockerfile:1
# One image for every process of the network (deploy/k8s/entrypoint.sh maps <service>-api, <service>-worker,
# <service>-relay, <service>-migrate and install-network to the command). Build from the repository root:
#   docker build -t referralnet:0.1.0 .
# Stage 1 builds the virtual environment (compilers allowed); stage 2 is python:3.11-slim with only that
# environment (which holds the installed `services` package: the source) and the entrypoint, run as uid 10001.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# A compiler for any dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
# A regular (not editable) install: the venv then holds the project's code and its pinned dependencies.
# PIP_CONSTRAINT also pins what the build backend is built with.
RUN PIP_CONSTRAINT=/src/constraints.txt pip install "pip>=23.2" \
    && PIP_CONSTRAINT=/src/constraints.txt pip install . \
    && python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 referralnet \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin referralnet
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 deploy/k8s/entrypoint.sh /usr/local/bin/referralnet-entrypoint
# The root filesystem is read-only in the cluster: bytecode is compiled above, scratch goes to /tmp (an
# emptyDir). PYTHONSAFEPATH keeps the working directory out of sys.path.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONSAFEPATH=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/referralnet-entrypoint"]
CMD ["help"]
