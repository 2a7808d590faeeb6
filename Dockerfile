# syntax=docker/dockerfile:1
# FlagShip's production image: one image, three processes chosen by command (docs/deployment.md).
#   default     gunicorn -c gunicorn.conf.py flagship.wsgi:application  (API and admin, port 8000)
#   stream      uvicorn flagship.asgi:application ...                    (/api/v1/stream, port 8001)
#   worker      python manage.py run_worker                              (webhooks, schedules, counts)
#   migrations  python manage.py migrate --no-input                      (one-off, before web starts)
# docker-compose.prod.yml runs each of them; `make validate-deploy` lints this file (hadolint).

# --- build: every runtime dependency into a virtualenv (all of them ship wheels: no compiler) ---
FROM python:3.12.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# requirements.txt installs the evaluation engine from ./sdk/python, so the SDK comes first.
COPY requirements.txt ./
COPY sdk/python ./sdk/python
RUN pip install --no-cache-dir --requirement requirements.txt

# --- runtime: the interpreter, the virtualenv and the code; nothing to build with -------------
FROM python:3.12.12-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_ENV=production \
    DJANGO_STATIC_ROOT=/app/var/static \
    GUNICORN_BIND=0.0.0.0:8000 \
    UVICORN_HOST=0.0.0.0 \
    UVICORN_PORT=8001
# A fixed uid/gid, so volumes and Kubernetes' runAsNonRoot can name it.
RUN groupadd --system --gid 10001 flagship \
    && useradd --system --uid 10001 --gid flagship --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin flagship
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays owned by root: the process can read it, not change it.
COPY . .
# Static files are collected (hashed and compressed: whitenoise's CompressedManifestStaticFilesStorage)
# at build time, with production settings and a throwaway key that lives only in this step.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --no-input --verbosity 0
USER 10001:10001
EXPOSE 8000 8001
# /healthz of the web process (the stream service passes its own URL; the worker serves no HTTP).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "flagship.wsgi:application"]
