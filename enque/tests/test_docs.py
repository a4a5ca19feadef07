"""The README's configuration table and .env.example list every variable settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from enque import config

ROOT = Path(__file__).resolve().parents[2]


def variables_read_by_settings() -> set[str]:
    source = (ROOT / "enque" / "settings.py").read_text()
    names = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    # The secrets are read in a loop over config.GENERATED_SECRETS.
    return names | set(config.GENERATED_SECRETS)


def test_settings_reads_the_variables_this_test_expects_to_find() -> None:
    # Guards the regex above: if settings changes how it reads variables, fix the test.
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"} <= (
        variables_read_by_settings()
    )


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_variable_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    if document == "README.md":
        text = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(
        name for name in variables_read_by_settings() if not re.search(rf"\b{name}\b", text)
    )
    assert not missing, f"{document} does not document {', '.join(missing)}"
