"""The deployment files stay true without a Docker engine or GitHub (docs/deployment.md).

The Dockerfile, docker-compose.yml and .github/workflows/ci.yml cannot run here, so they are read:
the image's entry point runs the Procfile's processes (the ones `make run` starts), compose sets
only variables the code reads and checks health on endpoints that answer, the workflow's jobs
chain test -> image -> staging -> smoke -> production. The staging profile is loaded for real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from django.test import Client

from penguinmails.health import HealthCheckMiddleware
from tests.ops.conftest import PYTHON, ROOT
from tests.ops.test_deploy_check import production_env

ENTRYPOINT = ROOT / "deploy" / "procfile-run"
# docker-compose service -> the Procfile process it runs.
COMPOSE_PROCESSES = {"migrate": "release", "web": "web", "worker": "worker", "beat": "beat"}


def procfile(path: Path) -> dict[str, str]:
    lines = (line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    return {name.strip(): command.strip() for name, command in lines}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def run_entrypoint(process: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROCFILE_DRY_RUN": "1"}
    return subprocess.run(
        [str(ENTRYPOINT), process], env=env, capture_output=True, text=True, timeout=10
    )


def names_the_code_reads() -> set[str]:
    """Environment variables read by the settings (env helpers) and by the Procfile's lines."""
    settings_files = [
        ROOT / "penguinmails" / "settings.py",
        *ROOT.glob("penguinmails/settings_*.py"),
    ]
    names: set[str] = set()
    for path in settings_files:
        names |= set(re.findall(r"env_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", path.read_text()))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "Procfile").read_text()))
    return names


def test_it_runs_each_procfile_process_through_the_images_entry_point() -> None:
    processes = procfile(ROOT / "Procfile")
    for process in ("web", "worker", "beat", "release"):
        result = run_entrypoint(process)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == processes[process]
    unknown = run_entrypoint("shell")
    assert unknown.returncode == 64
    assert "no process named 'shell'" in unknown.stderr


def test_its_entry_point_runs_the_line_with_the_procfiles_defaults(tmp_path: Path) -> None:
    procfile_path = tmp_path / "Procfile"
    procfile_path.write_text("web: echo serving on ${PORT:-8000} && echo then\n")
    env = {"PATH": os.environ.get("PATH", ""), "PROCFILE": str(procfile_path)}
    ran = subprocess.run(
        [str(ENTRYPOINT), "web"], env=env, capture_output=True, text=True, timeout=10
    )
    assert (ran.returncode, ran.stdout) == (0, "serving on 8000\nthen\n")
    ran = subprocess.run(
        [str(ENTRYPOINT), "web"], env={**env, "PORT": "9000"}, capture_output=True, text=True
    )
    assert ran.stdout.startswith("serving on 9000")
    usage = subprocess.run([str(ENTRYPOINT)], env=env, capture_output=True, text=True)
    assert usage.returncode == 64 and "web" in usage.stderr


def test_its_image_is_slim_non_root_and_fails_the_build_on_a_failed_step() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install ." in runs
    assert "manage.py collectstatic --noinput" in runs
    for name in ("Dockerfile", "docker-compose.yml", ".github/workflows/ci.yml"):
        assert "|| true" not in (ROOT / name).read_text(), name
    entrypoint = json.loads(dict(instructions)["ENTRYPOINT"])
    assert entrypoint == ["/app/deploy/procfile-run"]
    assert os.access(ENTRYPOINT, os.X_OK)
    (cmd,) = json.loads(dict(instructions)["CMD"])
    assert cmd in procfile(ROOT / "Procfile")


def test_its_compose_services_run_the_processes_make_run_starts() -> None:
    services = compose()["services"]
    app_services = {name for name, service in services.items() if "build" in service}
    assert app_services == set(COMPOSE_PROCESSES)
    production = procfile(ROOT / "Procfile")
    development = procfile(ROOT / "Procfile.dev")  # what `make run` starts
    for name, process in COMPOSE_PROCESSES.items():
        assert services[name]["command"] == [process], name
        assert process in production
        if process != "release":  # make run migrates before starting its processes
            assert process in development
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_its_compose_sets_only_variables_the_code_reads() -> None:
    readable = names_the_code_reads()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_ENV"} <= readable
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        unread = set(service.get("environment", {})) - readable
        assert not unread, f"{name} sets {sorted(unread)}, which nothing reads"
        assert service["env_file"] == ".env"


def test_its_processes_share_one_metrics_directory_on_a_volume() -> None:
    """/metrics (web) adds up files the worker and beat processes write: one shared volume."""
    loaded = compose()
    mounts = set()
    for name in ("web", "worker", "beat"):
        service = loaded["services"][name]
        directory = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        volume = next(v for v in service["volumes"] if v.endswith(f":{directory}"))
        mounts.add(volume)
    (volume,) = mounts
    assert volume.split(":")[0] in loaded["volumes"]
    assert "PROMETHEUS_MULTIPROC_DIR" in names_the_code_reads()


@pytest.mark.django_db
def test_its_health_checks_hit_health_endpoints_that_answer() -> None:
    services = compose()["services"]
    web_port = re.search(r"PORT:-(\d+)", procfile(ROOT / "Procfile")["web"])
    assert web_port is not None
    for name in ("web", "worker", "beat"):
        test = " ".join(services[name]["healthcheck"]["test"])
        match = re.search(r"http://([\w.]+):(\d+)(/[\w/]*)", test)
        assert match is not None, name
        host, port, path = match.groups()
        assert host in ("127.0.0.1", "web") and port == web_port.group(1)
        assert path in HealthCheckMiddleware.PATHS
        response = Client(HTTP_HOST="localhost").get(path)
        assert response.status_code in (200, 503)
        assert set(response.json()) >= {"status", "checks"}
    assert "/health" in services["web"]["healthcheck"]["test"][-1]
    assert "/health/queue" in services["worker"]["healthcheck"]["test"][-1]


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    return loaded


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_its_workflow_tests_builds_stages_smokes_then_promotes() -> None:
    flow = workflow()
    triggers = flow.get("on", flow.get(True))  # PyYAML reads a bare `on` as True
    assert set(triggers) == {"push", "pull_request"}
    jobs = flow["jobs"]
    assert set(jobs) == {"ci", "image", "staging", "smoke", "production"}
    assert needs(jobs["ci"]) == set()
    assert needs(jobs["image"]) == {"ci"}
    assert needs(jobs["staging"]) == {"image"}
    assert needs(jobs["smoke"]) == {"staging"}
    assert "smoke" in needs(jobs["production"])
    assert set(jobs["ci"]["services"]) == {"postgres", "redis"}
    assert ".ci/run" in steps_text(jobs["ci"]).split()
    assert "push: true" in yaml.safe_dump(jobs["image"]["steps"])
    assert "ghcr.io" in steps_text(jobs["image"])
    smoke = steps_text(jobs["smoke"])
    assert "curl -fsS" in smoke and "/health /health/queue" in smoke
    for stage in ("staging", "production"):
        assert jobs[stage]["environment"] == stage
        assert "manage.py migrate_safely" in steps_text(jobs[stage])


def test_the_command_the_workflow_promotes_with_exists() -> None:
    assert "migrate_safely" in get_commands()


def staging_settings(**overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = production_env(**{"DJANGO_ENV": "staging", **overrides})
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.ENVIRONMENT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_PRELOAD, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.ALLOW_TEST_EMAIL_DOMAINS)"
    )
    return subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_its_staging_profile_differs_from_production_as_documented() -> None:
    staging = staging_settings()
    assert staging.returncode == 0, staging.stderr
    assert staging.stdout.split() == ["staging", "3600", "False", "False", "True"]
    production = staging_settings(DJANGO_ENV="production")
    assert production.stdout.split() == ["production", "31536000", "True", "True", "False"]
    live = staging_settings(STRIPE_SECRET_KEY="sk_live_abc")
    assert live.returncode != 0
    assert "STRIPE_SECRET_KEY holds a live key" in live.stderr
    assert staging_settings(STRIPE_SECRET_KEY="sk_test_abc").returncode == 0
    unknown = staging_settings(DJANGO_ENV="qa")
    assert unknown.returncode != 0 and "DJANGO_ENV must be" in unknown.stderr
    documented = (ROOT / "docs" / "deployment.md").read_text()
    assert "DJANGO_ENV=staging" in documented


@pytest.mark.slow
def test_the_images_collectstatic_step_runs_without_database_or_redis(tmp_path: Path) -> None:
    """The build step as the Dockerfile writes it, in a bare environment: it must succeed (a
    failure fails the image build) and write the manifest the image relies on."""
    (step,) = [
        rest for kw, rest in dockerfile_instructions() if kw == "RUN" and "collectstatic" in rest
    ]
    command = step.split(" && ")[0]  # the assignments and collectstatic itself
    assert command.rstrip().endswith("python manage.py collectstatic --noinput")
    env = {
        "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "staticfiles"),
    }
    result = subprocess.run(
        ["sh", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "staticfiles" / "staticfiles.json").is_file()
