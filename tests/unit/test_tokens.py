from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quill.auth.tokens import build_key_set, key_id
from quill.settings import ConfigError, Settings


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_dev_key_is_generated_once_and_shared(tmp_path: Path) -> None:
    settings = Settings(jwt_dev_key_path=str(tmp_path / "sub" / "dev.pem"))
    first = build_key_set(settings)
    second = build_key_set(settings)
    assert first.signing_kid == second.signing_kid
    assert (tmp_path / "sub" / "dev.pem").stat().st_mode & 0o777 == 0o600


def test_verification_only_functions_hold_no_signing_key() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    keys = build_key_set(Settings(jwt_public_keys=(pem,)))
    assert keys.signing_key is None
    assert list(keys.public_keys) == [key_id(public)]


def test_rotation_keeps_old_public_keys_trusted() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old_public = (
        old.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    keys = build_key_set(Settings(jwt_private_key=_pem(new), jwt_public_keys=(old_public,)))
    assert keys.signing_kid == key_id(new.public_key())
    assert set(keys.public_keys) == {key_id(new.public_key()), key_id(old.public_key())}


def test_a_non_ed25519_key_is_a_config_error() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(ConfigError, match="Ed25519"):
        build_key_set(Settings(jwt_private_key=pem))
