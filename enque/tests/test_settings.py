"""Settings come from the environment and fail fast, naming what is missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from enque import config

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "SECRET_KEY": "x" * 50,
    "JWT_SECRET": "y" * 50,
    "DATABASE_ENCRYPTION_KEY": "0" * 64,
}


def load_settings(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in SECRETS and key not in ("DEBUG", "ENVIRONMENT", "ALLOWED_HOSTS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="enque.settings",
        ENQUE_VAR_DIR=str(tmp_path),
        REDIS_URL="memory",
        **overrides,
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_production_refuses_to_start_without_each_secret(tmp_path: Path, missing: str) -> None:
    present = {key: value for key, value in SECRETS.items() if key != missing}

    result = load_settings(
        tmp_path, ENVIRONMENT="production", ALLOWED_HOSTS="help.example.com", **present
    )

    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    # The message names the variable, never a value of another secret.
    for value in present.values():
        assert value not in result.stderr


def test_production_requires_allowed_hosts(tmp_path: Path) -> None:
    result = load_settings(tmp_path, ENVIRONMENT="production", **SECRETS)

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_production_starts_with_every_secret(tmp_path: Path) -> None:
    result = load_settings(
        tmp_path, ENVIRONMENT="production", ALLOWED_HOSTS="help.example.com", **SECRETS
    )

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secrets.env").exists()


def test_development_generates_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    first = config.development_secrets(tmp_path / "secrets.env")
    second = config.development_secrets(tmp_path / "secrets.env")

    assert set(first) == {"SECRET_KEY", "JWT_SECRET", "DATABASE_ENCRYPTION_KEY"}
    assert first == second
    assert oct((tmp_path / "secrets.env").stat().st_mode & 0o777) == "0o600"


def test_development_start_writes_the_untracked_secrets_file(tmp_path: Path) -> None:
    result = load_settings(tmp_path, ENVIRONMENT="development")

    assert result.returncode == 0, result.stderr
    assert "SECRET_KEY=" in (tmp_path / "secrets.env").read_text()


@pytest.mark.parametrize(
    ("value", "level"),
    [("debug", "DEBUG"), ("info", "INFO"), ("warn", "WARNING"), ("ERROR", "ERROR")],
)
def test_log_level_names(value: str, level: str) -> None:
    assert config.log_level(value) == level


def test_unknown_log_level_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        config.log_level("loud")


def test_staging_defaults_to_debug_logs_and_five_minute_sync(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.LOG_LEVEL, settings.EMAIL_SYNC_INTERVAL)",
        ],
        cwd=ROOT,
        env={
            **{
                k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "EMAIL_SYNC_INTERVAL")
            },
            "DJANGO_SETTINGS_MODULE": "enque.settings",
            "ENQUE_VAR_DIR": str(tmp_path),
            "REDIS_URL": "memory",
            "ENVIRONMENT": "staging",
            "DEBUG": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DEBUG", "300"]
