"""Secrets at rest: AES-256-GCM with a key from a setting or a 0600 key file.

What is promised:

- ``SecretBox.seal(plaintext, context)`` returns ``version | key id | nonce | ciphertext``;
  the ``context`` (``table.column:row-id``, see ``seal_context``) is authenticated, so a
  sealed value copied into another row or column does not open.
- The key comes from ``M365SYNC_SECRET_KEY`` (base64 of 32 bytes) or from
  ``{data_dir}/secret.key``, created with permissions 0600 (never widened) in a directory
  created 0700 — but only for a database that holds nothing sealed yet. A key file missing
  while sealed values exist is ``SecretKeyMissing``, naming the path and the fix; a new key
  is never made over existing ciphertext (it could not open it).
- Key rotation (``m365sync keys rotate``) writes the new key to ``secret.key.next``,
  re-seals every sealed column in one transaction, then renames the file into place; a box
  also loads ``secret.key.next`` when present, so a rotation interrupted between the commit
  and the rename loses nothing.
- Opening with an unknown key or a tampered value raises ``SecretKeyMismatch``, whose message
  says which key is expected; it never includes plaintext.
- ``generate_self_signed_certificate`` makes the RSA key pair and self-signed certificate a
  remote system's app registration takes (Entra ID's certificate credential, a Salesforce
  connected app's JWT signing certificate); the key comes back unencrypted, for the caller
  to seal.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from m365sync.errors import M365SyncError
from m365sync.settings import Settings

if TYPE_CHECKING:
    from cryptography import x509

VERSION = b"\x01"
KEY_FILE = "secret.key"
NEXT_KEY_FILE = "secret.key.next"


class SecretKeyError(M365SyncError):
    """The secret key is missing, malformed or not the one the data was sealed with."""

    status = 500


class SecretKeyMismatch(SecretKeyError):
    pass


class SecretKeyMissing(SecretKeyError):
    """The key file is gone while the database holds values sealed with it."""


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, *, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise SecretKeyError(
            f"The secret key in {source} is not valid base64.",
            fix="Generate one with: python -c "
            '"import os,base64;print(base64.b64encode(os.urandom(32)).decode())"',
        ) from exc
    if len(key) != 32:
        raise SecretKeyError(
            f"The secret key in {source} is {len(key)} bytes; AES-256 needs 32.",
            fix="Use base64 of 32 random bytes.",
        )
    return key


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"m365sync-key-id" + key).digest()[:4]


def write_key_file(path: Path, key: bytes) -> None:
    """Create ``path`` with mode 0600 holding the key (fails if it exists); its directory,
    if it is created here, gets mode 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encode_key(key) + "\n")
    os.chmod(path, 0o600)


def seal_context(table: str, column: str, row_id: str) -> str:
    return f"{table}.{column}:{row_id}"


class SecretBox:
    """Seals and opens secrets. ``keys[0]`` seals; every key in ``keys`` can open."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("No secret key configured.", fix="Set M365SYNC_SECRET_KEY.")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self._primary_id = key_id(keys[0])

    @property
    def primary_key_id(self) -> str:
        return self._primary_id.hex()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, anything_sealed: Callable[[], bool] | None = None
    ) -> SecretBox:
        """See ``load_keys``."""
        return cls(load_keys(settings, anything_sealed=anything_sealed))

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        aead = self._keys[self._primary_id]
        ciphertext = aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return VERSION + self._primary_id + nonce + ciphertext

    def open(self, sealed: bytes, context: str) -> str:
        if len(sealed) < 1 + 4 + 12 + 16 or sealed[:1] != VERSION:
            raise SecretKeyMismatch("A stored secret is corrupt.", fix="Enter the secret again.")
        kid, nonce, ciphertext = sealed[1:5], sealed[5:17], sealed[17:]
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretKeyMismatch(
                f"A stored secret was sealed with key {kid.hex()}, which is not configured.",
                fix=(
                    "Restore the secret key (M365SYNC_SECRET_KEY or secret.key) used when it was "
                    "saved."
                ),
            )
        try:
            return aead.decrypt(nonce, ciphertext, context.encode("utf-8")).decode("utf-8")
        except InvalidTag as exc:
            raise SecretKeyMismatch(
                "A stored secret failed its integrity check (tampered or moved).",
                fix="Enter the secret again.",
            ) from exc

    def sealed_with_primary(self, sealed: bytes) -> bool:
        return sealed[1:5] == self._primary_id


def load_keys(
    settings: Settings, *, anything_sealed: Callable[[], bool] | None = None
) -> list[bytes]:
    """The primary key first, then a pending rotation's key if present.

    When the key file is missing it is created only if ``anything_sealed`` (given by a
    caller with the database at hand) answers that nothing is sealed yet: a fresh
    installation. Otherwise ``SecretKeyMissing``: a new key could not open what is stored.
    """
    if settings.secret_key:
        return [decode_key(settings.secret_key, source="M365SYNC_SECRET_KEY")]
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        if anything_sealed is None or anything_sealed():
            raise _key_file_missing(path)
        with contextlib.suppress(FileExistsError):  # another process created it first
            write_key_file(path, generate_key())
    keys = [decode_key(path.read_text(encoding="ascii"), source=str(path))]
    pending = settings.data_dir / NEXT_KEY_FILE
    if pending.exists():
        keys.append(decode_key(pending.read_text(encoding="ascii"), source=str(pending)))
    return keys


def _key_file_missing(path: Path) -> SecretKeyMissing:
    return SecretKeyMissing(
        f"The secret key file {path.resolve()} is missing, but the database holds secrets "
        "encrypted with it (client secrets, passwords, Microsoft tokens). A new key could "
        "not open them, so none was created and nothing was changed.",
        fix=(
            f"Restore the key file from your backup to {path.resolve()} (permissions 0600), "
            "or set M365SYNC_SECRET_KEY to that key; then start again. Check also that "
            "M365SYNC_DATA_DIR names the same directory as before."
        ),
    )


@dataclass(frozen=True, repr=False)
class SelfSignedCertificate:
    """A key pair made here: the private key (unencrypted PKCS#8 PEM: seal it at rest) and
    its self-signed certificate (PEM, and parsed)."""

    private_key_pem: str
    certificate_pem: str
    certificate: x509.Certificate

    def __repr__(self) -> str:
        return f"SelfSignedCertificate(subject={self.certificate.subject.rfc4514_string()!r})"


def private_key_pem(key: Any) -> str:
    """A private key as unencrypted PKCS#8 PEM (the caller seals it at rest)."""
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode("ascii")


def generate_self_signed_certificate(common_name: str, *, days: int = 730) -> SelfSignedCertificate:
    """A new RSA 2048 key pair and a self-signed certificate (SHA-256, valid ``days`` from
    five minutes ago, so a clock a little behind still accepts it)."""
    # Loaded here: X.509 takes about 20 ms to import, and most commands never make a
    # certificate (opening sealed secrets needs AES-GCM alone).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return SelfSignedCertificate(
        private_key_pem=private_key_pem(key),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        certificate=certificate,
    )


__all__ = [
    "SecretBox",
    "SecretKeyError",
    "SecretKeyMismatch",
    "SecretKeyMissing",
    "SelfSignedCertificate",
    "decode_key",
    "encode_key",
    "generate_key",
    "generate_self_signed_certificate",
    "load_keys",
    "private_key_pem",
    "seal_context",
    "write_key_file",
]
