from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quill.auth import tokens
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


def _public_pem(key: Ed25519PrivateKey) -> str:
    encoded = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return encoded.decode()


def _raw(public: object) -> bytes:
    return public.public_bytes_raw()  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_pem_in_ed25519s_fixed_form_is_read_as_cryptography_reads_it(line_end: str) -> None:
    """Read without cryptography's ``serialization`` (login's first request): same keys."""
    private, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pem, public_pem = _pem(private).replace("\n", line_end), "  " + _public_pem(other) + "\n"
    assert tokens._ed25519_key_bytes(pem, "PRIVATE KEY", tokens._PRIVATE_DER_PREFIX) is not None
    assert tokens._ed25519_key_bytes(public_pem, "PUBLIC KEY", tokens._PUBLIC_DER_PREFIX) is not None
    keys = build_key_set(Settings(jwt_private_key=pem, jwt_public_keys=(public_pem,)))
    assert keys.signing_key is not None
    read = serialization.load_pem_private_key(pem.encode(), password=None)
    assert keys.signing_key.private_bytes_raw() == read.private_bytes_raw()  # type: ignore[union-attr]
    assert {_raw(key) for key in keys.public_keys.values()} == {_raw(private.public_key()), _raw(other.public_key())}
    assert keys.signing_kid == key_id(private.public_key())


def test_any_other_pem_is_left_to_cryptography() -> None:
    """An encrypted key, a truncated body or a wrong label is not the fixed form:
    cryptography reads it or says why it cannot."""
    key = Ed25519PrivateKey.generate()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    with pytest.raises(ConfigError, match="not a readable PEM private key"):
        build_key_set(Settings(jwt_private_key=encrypted))
    lines = _pem(key).splitlines()
    with pytest.raises(ConfigError, match="not a readable PEM private key"):
        build_key_set(Settings(jwt_private_key="\n".join([lines[0], lines[1][:-8], lines[2]])))
    relabelled = _pem(key).replace("PRIVATE KEY", "ED25519 KEY")
    with pytest.raises(ConfigError, match="not a readable PEM private key"):
        build_key_set(Settings(jwt_private_key=relabelled))
    with pytest.raises(ConfigError, match="not readable PEM"):
        build_key_set(Settings(jwt_public_keys=(_public_pem(key)[:-40] + "\n-----END PUBLIC KEY-----",)))
    surplus_padding = "\n".join([lines[0], lines[1] + "==", lines[2]])
    assert tokens._ed25519_key_bytes(surplus_padding, "PRIVATE KEY", tokens._PRIVATE_DER_PREFIX) is None
    with pytest.raises(ConfigError, match="not a readable PEM private key"):
        build_key_set(Settings(jwt_private_key=surplus_padding))


def test_the_claims_carry_the_token_they_were_verified_from_but_never_show_it(tmp_path: Path) -> None:
    """``GET /api/user`` answers with the caller's own token, from the claims the guard
    verified, not a second parse of the header; the claims' repr (a log line, a
    traceback) leaves it out."""
    from datetime import UTC, datetime, timedelta

    from quill.settings import use_settings

    with use_settings(Settings(jwt_dev_key_path=str(tmp_path / "dev.pem"))):
        token = tokens.issue_access_token(7, "session-1", datetime.now(UTC) + timedelta(hours=1))
        claims = tokens.decode_access_token(token)

    assert (claims.user_id, claims.session_id, claims.token) == (7, "session-1", token)
    assert token not in repr(claims)
