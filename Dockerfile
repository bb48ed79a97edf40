# The PenguinMails image: one image, four processes (the Procfile's web, worker, beat and
# release), chosen by the command: `docker run IMAGE worker`. docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump and pg_restore of the server's major version (PostgreSQL 16 in docker-compose.yml):
# `backup` and `migrate_safely` use them, and the distribution's client may be older than the
# server. From the PostgreSQL project's own apt repository.
ARG PG_MAJOR=16
# The client follows its major version's point releases (security fixes): not pinned further.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && . /etc/os-release \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
 && apt-get purge -y curl && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 app \
 && useradd --create-home --uid 10001 --gid app --shell /usr/sbin/nologin app
WORKDIR /app

# The pinned dependencies first (pyproject's [project] list: `packages = []`, so this installs
# exactly them), in a layer that is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN pip install .

COPY . .

# Hashed, compressed static files and their manifest, built into the image. A failure fails the
# build. Settings need a key, encryption keys and URLs to load; collectstatic uses none of them.
RUN DEBUG=false SECRET_KEY=collectstatic-only \
    FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    DATABASE_URL=postgres://unused@localhost/unused REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
 && test -f staticfiles/staticfiles.json \
 && install -d -o app -g app /app/media /app/.local /app/.local/metrics \
 && chown -R app:app /app/staticfiles

# By number, so a runtime that checks for a non-root user can see it without /etc/passwd.
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/app/deploy/procfile-run"]
CMD ["web"]
