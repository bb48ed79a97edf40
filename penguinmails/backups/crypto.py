"""Streaming encryption of backups: AES-256-GCM in 1 MiB records (the STREAM construction).

A dump may be many gigabytes, so it is never held in memory: `EncryptingReader` turns a readable
stream into an encrypted one (read by the storage as it uploads), `decrypt_stream` writes the
plaintext of one to a file. Fernet is not used because it authenticates a whole message at once.

Layout: header `PMBK` 0x01, key id (8 bytes), salt (16), nonce prefix (7); then records, each a
4-byte big-endian length and the ciphertext of up to RECORD plaintext bytes. Record i's nonce is
prefix || i (4 bytes) || last (1 byte), and the header is every record's associated data, so
records cannot be reordered, dropped, cut off at the end or moved to another file unnoticed.

The key is derived (HKDF-SHA256, per-file salt) from BACKUP_ENCRYPTION_KEY or, when that is
empty, from the first of FIELD_ENCRYPTION_KEYS; every listed key can decrypt (rotation), and the
key id in the header says which one is needed without revealing it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
from collections.abc import Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from penguinmails.errors import DomainError

MAGIC = b"PMBK\x01"
RECORD = 1024 * 1024
HEADER_SIZE = len(MAGIC) + 8 + 16 + 7
_INFO = b"penguinmails backup v1"


class BackupKeyError(DomainError):
    """No usable key, or the file was made with a key no setting holds."""

    status_code = 503
    code = "backup_key_unavailable"


class BackupCorrupt(DomainError):
    """The file fails authentication: truncated, altered, or not a backup."""

    status_code = 422
    code = "backup_corrupt"


def _key_bytes(value: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value.strip().encode())
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        # Never echo the value: name the setting only.
        raise BackupKeyError(
            f"{name} must be 32 url-safe base64 bytes (make one with `python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
        )
    return raw


def _keys() -> list[bytes]:
    """Every configured key, the encrypting one first."""
    keys = []
    own = getattr(settings, "BACKUP_ENCRYPTION_KEY", "")
    if own:
        keys.append(_key_bytes(own, "BACKUP_ENCRYPTION_KEY"))
    for position, value in enumerate(settings.FIELD_ENCRYPTION_KEYS, start=1):
        keys.append(_key_bytes(value, f"FIELD_ENCRYPTION_KEYS entry {position}"))
    if not keys:
        raise BackupKeyError("Neither BACKUP_ENCRYPTION_KEY nor FIELD_ENCRYPTION_KEYS is set.")
    return keys


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"penguinmails backup key id" + key).digest()[:8]


def current_key_id() -> str:
    return key_id(_keys()[0]).hex()


def _derive(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(key)
    return AESGCM(derived)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def encrypt_chunks(source: IO[bytes]) -> Iterator[bytes]:
    """The encrypted form of `source`, piece by piece (header first)."""
    key = _keys()[0]
    salt, prefix = os.urandom(16), os.urandom(7)
    header = MAGIC + key_id(key) + salt + prefix
    aead = _derive(key, salt)
    yield header
    index = 0
    current = source.read(RECORD)
    while True:
        following = source.read(RECORD)
        last = not following
        sealed = aead.encrypt(_nonce(prefix, index, last), current, header)
        yield struct.pack(">I", len(sealed)) + sealed
        if last:
            return
        current, index = following, index + 1


class EncryptingReader(io.RawIOBase):
    """A readable stream of the encrypted bytes of `source` (what storage uploads)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._chunks = encrypt_chunks(source)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _read_exact(source: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = source.read(size - len(data))
        if not piece:
            break
        data += piece
    return data


def _record(source: IO[bytes]) -> bytes | None:
    length = _read_exact(source, 4)
    if not length:
        return None
    if len(length) < 4:
        raise BackupCorrupt("The backup file is cut off.")
    (size,) = struct.unpack(">I", length)
    if size > RECORD + 16:
        raise BackupCorrupt("The backup file is not a PenguinMails backup or is damaged.")
    sealed = _read_exact(source, size)
    if len(sealed) < size:
        raise BackupCorrupt("The backup file is cut off.")
    return sealed


def decrypt_stream(source: IO[bytes], target: IO[bytes]) -> int:
    """Write the plaintext of the encrypted `source` to `target`; returns bytes written."""
    header = _read_exact(source, HEADER_SIZE)
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        raise BackupCorrupt("The file is not a PenguinMails backup (no header).")
    wanted = header[len(MAGIC) : len(MAGIC) + 8]
    salt = header[len(MAGIC) + 8 : len(MAGIC) + 24]
    prefix = header[len(MAGIC) + 24 :]
    key = next((k for k in _keys() if key_id(k) == wanted), None)
    if key is None:
        raise BackupKeyError(
            f"The backup was encrypted with key {wanted.hex()}, which neither "
            "BACKUP_ENCRYPTION_KEY nor FIELD_ENCRYPTION_KEYS holds."
        )
    aead, written, index = _derive(key, salt), 0, 0
    sealed = _record(source)
    if sealed is None:
        raise BackupCorrupt("The backup file is empty after its header.")
    while sealed is not None:
        following = _record(source)
        try:
            plain = aead.decrypt(_nonce(prefix, index, following is None), sealed, header)
        except InvalidTag:
            raise BackupCorrupt(
                f"Record {index} of the backup fails authentication (altered or cut off)."
            ) from None
        target.write(plain)
        written += len(plain)
        sealed, index = following, index + 1
    return written
