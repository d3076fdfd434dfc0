# The users service image: its API (the default command), its Celery worker, its relay and its
# migrations, each a different command. Build from the repository root:
#   docker build -f docker/users.Dockerfile -t registration-users .

# Builder: a virtualenv with the runtime requirements, in a layer of its own that is rebuilt only
# when requirements/base.lock changes: every transitive requirement pinned, and each file checked
# against the lock's hashes (refresh it with `make lock`). pip runs from the base image (--python)
# so that the virtualenv itself carries no pip. Every wheel is prebuilt: no compiler is needed.
FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv --without-pip /opt/venv
COPY requirements/base.lock /tmp/requirements.lock
RUN pip --python /opt/venv/bin/python install --require-hashes -r /tmp/requirements.lock

# Runtime: the slim base, the virtualenv, the code, a non-root user.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
COPY docker/healthcheck.py /usr/local/bin/healthcheck
WORKDIR /app
COPY saga/ saga/
COPY users_svc/ users_svc/
RUN python -m compileall -q saga users_svc
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["healthcheck", "http", "http://127.0.0.1:8000/readyz"]
CMD ["uvicorn", "users_svc.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
