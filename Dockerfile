# syntax=docker/dockerfile:1
#
# Account Radar worker / CLI image.
#
#   docker build -t account-radar .
#   docker run --rm account-radar radar --help
#
# The default command runs the Faust worker (all agents, sinks and /metrics on
# port 6066). Configuration is by RADAR_* environment variables (see SPEC §6);
# docker-compose.yml sets them for the full stack.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RADAR_WEB_HOST=0.0.0.0 \
    RADAR_WEB_PORT=6066

# Unprivileged runtime user (fixed uid/gid so volume ownership is predictable).
RUN groupadd --system --gid 10001 radar \
 && useradd --system --uid 10001 --gid radar \
        --home-dir /home/radar --create-home --shell /usr/sbin/nologin radar

WORKDIR /app

# Project metadata first. README*/LICENSE* are optional globs: they are copied
# if present (pyproject.toml may reference them) and silently skipped if not.
COPY pyproject.toml README* LICENSE* ./
COPY streams/ ./streams/
COPY schemas/ ./schemas/
COPY processors/ ./processors/
COPY sinks/ ./sinks/
COPY tools/ ./tools/

RUN pip install --no-cache-dir . \
 && command -v radar

COPY samples/ ./samples/

# The worker keeps local state (Faust data dir, .local/) under its working
# directory, so the runtime user must own it.
RUN mkdir -p /app/.local \
 && chown -R radar:radar /app

USER radar

EXPOSE 6066

CMD ["radar", "worker"]
