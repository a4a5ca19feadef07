"""docker-compose.yml and the Dockerfile run what enque/deploy_commands.py lists — the
commands the production smoke test starts — and the compose file is well-formed.

`docker compose config` validates the file where the compose client is present; where it
is not (no Docker here), the YAML checks below still run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from enque import deploy_commands, queues

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command(compose: dict[str, Any], service: str) -> list[str]:
    value = compose["services"][service]["command"]
    assert isinstance(value, list), f"{service}: write the command as a list (exec form)"
    # YAML would read a bare 2 as a number; the commands are strings throughout.
    assert all(isinstance(arg, str) for arg in value), f"{service}: quote every argument"
    return value


def test_the_services_are_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "beat",
        "minio",
        "minio-init",
    }


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("web", deploy_commands.web()),
        ("worker", deploy_commands.worker()),
        ("beat", deploy_commands.beat()),
        ("migrate", deploy_commands.migrate()),
    ],
)
def test_compose_runs_the_commands_the_smoke_test_runs(
    compose: dict[str, Any], service: str, expected: list[str]
) -> None:
    assert command(compose, service) == expected


def test_the_image_runs_the_web_command_by_default() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd is not None
    assert json.loads(cmd.group(1)) == deploy_commands.web()


def test_the_web_command_serves_with_several_processes_and_shuts_down_gracefully() -> None:
    argv = deploy_commands.web()
    assert argv[argv.index("--workers") + 1] == "2"
    assert argv[argv.index("--timeout-graceful-shutdown") + 1] == str(
        deploy_commands.WEB_GRACEFUL_SHUTDOWN_SECONDS
    )


def test_the_worker_consumes_every_queue() -> None:
    argv = deploy_commands.worker()
    assert argv[argv.index("--queues") + 1].split(",") == list(queues.ALL)


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"unexpected duration {duration!r}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_containers_get_longer_to_stop_than_their_own_graceful_shutdown(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert seconds(services["web"]["stop_grace_period"]) > (
        deploy_commands.WEB_GRACEFUL_SHUTDOWN_SECONDS
    )
    # Celery's warm shutdown waits for running tasks; a mailbox sync can take a while.
    assert seconds(services["worker"]["stop_grace_period"]) >= 60
    for name in ("migrate", "web", "worker", "beat"):
        assert services[name]["init"] is True, f"{name}: PID 1 must forward SIGTERM"


def test_migrations_run_once_before_web_worker_and_beat(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_there_is_exactly_one_beat(compose: dict[str, Any]) -> None:
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1


def test_postgres_keeps_its_data_in_a_volume(compose: dict[str, Any]) -> None:
    assert "postgres:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "postgres" in compose["volumes"]


def test_minio_and_its_bucket_come_with_the_s3_profile_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["minio"]["profiles"] == ["s3"]
    assert services["minio-init"]["profiles"] == ["s3"]
    script = services["minio-init"]["entrypoint"][-1]
    assert "mc mb --ignore-existing" in script
    assert "mc anonymous set none" in script  # private
    # Without the profile, web and worker must not wait for it.
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["minio-init"]["required"] is False


def test_every_compose_variable_is_in_env_example(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    # ${NAME}, ${NAME:-default}, ${NAME:?message}; $$NAME is the container's own variable.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    documented = (ROOT / ".env.example").read_text()
    missing = sorted(name for name in used if not re.search(rf"\b{name}\b", documented))
    assert not missing, f".env.example does not mention {', '.join(missing)}"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or (
        subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode
        != 0
    ):
        pytest.skip("the docker compose client is not installed here")
    # A copy beside a filled-in .env (the services read it as env_file).
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + "\nPOSTGRES_PASSWORD=x\n")
    result = subprocess.run(
        [docker, "compose", "--profile", "s3", "config", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
