"""The state directory's EncryptionConfiguration: created once with a new key (mode 0600), kept
across starts, and a broken one refused with an error that names the file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestra.api.registry import DEFAULT_REGISTRY
from orchestra.api.request import encryption
from orchestra.app.state import ENCRYPTION_CONFIG, load_or_create_encryption_config


def test_created_once_private_and_kept(tmp_path: Path) -> None:
    doc, created = load_or_create_encryption_config(tmp_path)
    path = tmp_path / ENCRYPTION_CONFIG
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(encryption.transformers(doc, DEFAULT_REGISTRY)) == ["/registry/core/secrets/"]
    again, created = load_or_create_encryption_config(tmp_path)
    assert (again, created) == (doc, False)  # the same key after a restart
    assert [p.name for p in tmp_path.iterdir()] == [ENCRYPTION_CONFIG]  # no temporary file left


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]"], ids=["not-json", "not-an-object"])
def test_a_broken_config_names_the_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / ENCRYPTION_CONFIG).write_bytes(content)
    with pytest.raises(encryption.ConfigError) as exc:
        load_or_create_encryption_config(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / ENCRYPTION_CONFIG}: ")
