"""The backup file format: round trip over several records, and every way a file can be wrong
(altered, cut off, another file's header, a key no setting holds) refused by name."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from cryptography.fernet import Fernet

from penguinmails.backups.crypto import (
    RECORD,
    BackupCorrupt,
    BackupKeyError,
    EncryptingReader,
    decrypt_stream,
)

PLAIN = os.urandom(RECORD * 2 + 12345)  # three records, the last one short


def _encrypt(data: bytes) -> bytes:
    return EncryptingReader(io.BytesIO(data)).read()


def _decrypt(data: bytes) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out)
    return out.getvalue()


def test_it_round_trips_several_records_and_an_empty_file() -> None:
    sealed = _encrypt(PLAIN)
    assert PLAIN[:64] not in sealed
    assert _decrypt(sealed) == PLAIN
    assert _decrypt(_encrypt(b"")) == b""


def test_it_refuses_an_altered_byte() -> None:
    sealed = bytearray(_encrypt(PLAIN))
    sealed[RECORD + 100] ^= 1
    with pytest.raises(BackupCorrupt, match="fails authentication"):
        _decrypt(bytes(sealed))


def test_it_refuses_a_file_cut_after_a_whole_record() -> None:
    sealed = _encrypt(PLAIN)
    # header (36) + first record (4 + RECORD + 16): a whole record, but not marked last.
    cut = sealed[: 36 + 4 + RECORD + 16]
    with pytest.raises(BackupCorrupt):
        _decrypt(cut)
    with pytest.raises(BackupCorrupt, match="cut off"):
        _decrypt(sealed[:-10])


def test_it_refuses_what_is_not_a_backup() -> None:
    with pytest.raises(BackupCorrupt, match="not a PenguinMails backup"):
        _decrypt(b"PGDMP" + os.urandom(100))


def test_it_decrypts_with_a_rotated_key_and_names_a_missing_one(settings: Any) -> None:
    old = Fernet.generate_key().decode()
    settings.BACKUP_ENCRYPTION_KEY = ""
    settings.FIELD_ENCRYPTION_KEYS = [old]
    sealed = _encrypt(b"dump")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    assert _decrypt(sealed) == b"dump"
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(BackupKeyError, match="neither BACKUP_ENCRYPTION_KEY"):
        _decrypt(sealed)


def test_backup_encryption_key_wins_and_a_bad_one_is_named_not_echoed(settings: Any) -> None:
    own = Fernet.generate_key().decode()
    settings.BACKUP_ENCRYPTION_KEY = own
    sealed = _encrypt(b"dump")
    settings.BACKUP_ENCRYPTION_KEY = ""  # the field keys alone cannot open it
    with pytest.raises(BackupKeyError):
        _decrypt(sealed)
    settings.BACKUP_ENCRYPTION_KEY = "not-a-key-secret-value"
    with pytest.raises(BackupKeyError) as error:
        _encrypt(b"x")
    assert "BACKUP_ENCRYPTION_KEY" in str(error.value)
    assert "not-a-key-secret-value" not in str(error.value)
