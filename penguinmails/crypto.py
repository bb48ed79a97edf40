"""Secrets at rest: MultiFernet keyed by `FIELD_ENCRYPTION_KEYS` (comma-separated, newest first).

The newest key encrypts; every listed key decrypts, so rotating is: put a new key first, keep
the old one second, run `secrets rotate` (which calls `rotate()` on every stored secret), then
drop the old key. A token no listed key can open raises `SecretUnavailable`, naming the setting.

`EncryptedTextField` stores the Fernet token and reads back a `Secret` that decrypts only when
`.reveal()` is called. Decrypting lazily is deliberate: a row whose key was lost must still load,
list and save (so the mailbox can be shown and marked unusable with the reason) instead of
breaking every query that touches the table; only the code that needs the password fails.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from penguinmails.errors import DomainError

SETTING = "FIELD_ENCRYPTION_KEYS"


class SecretUnavailable(DomainError):
    """A stored secret cannot be decrypted: key missing, malformed, or not the encrypting one."""

    status_code = 503
    code = "secret_unavailable"


# Built once per distinct key list (settings can change under tests): (keys, all, newest).
_cache: tuple[tuple[str, ...], MultiFernet, Fernet] | None = None


def _fernets() -> tuple[MultiFernet, Fernet]:
    global _cache
    keys = tuple(getattr(settings, SETTING, None) or ())
    if _cache is not None and _cache[0] == keys:
        return _cache[1], _cache[2]
    if not keys:
        raise SecretUnavailable(f"{SETTING} is empty: no key to encrypt or decrypt secrets with.")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            # Never echo the key itself, only where it sits in the list.
            raise SecretUnavailable(
                f"{SETTING} entry {position} is not a valid Fernet key (32 url-safe base64 bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)."
            ) from None
    multi = MultiFernet(fernets)
    _cache = (keys, multi, fernets[0])
    return multi, fernets[0]


def _fernet() -> MultiFernet:
    return _fernets()[0]


def encrypt(plaintext: str) -> str:
    """A Fernet token for `plaintext`, made with the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            f"A stored secret cannot be decrypted with any key in {SETTING}: the key that "
            "encrypted it was removed or the setting is wrong."
        ) from None


def rotate(token: str) -> str:
    """The same secret re-encrypted with the newest key (for `secrets rotate`)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            f"A stored secret cannot be rotated: no key in {SETTING} decrypts it."
        ) from None


def is_current(token: str) -> bool:
    """True when the newest key alone opens `token` (nothing left to rotate)."""
    newest = _fernets()[1]
    try:
        newest.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


class Secret:
    """A secret read from the database or about to be written. `str()` never shows it."""

    __slots__ = ("_plaintext", "token")

    def __init__(self, *, token: str | None = None, plaintext: str | None = None) -> None:
        if (token is None) == (plaintext is None):
            raise ValueError("A Secret holds either a token or a plaintext.")
        self.token = token
        self._plaintext = plaintext

    def reveal(self) -> str:
        """The plaintext; raises SecretUnavailable when the keys cannot open it."""
        if self._plaintext is None:
            assert self.token is not None
            self._plaintext = decrypt(self.token)
        return self._plaintext

    def __str__(self) -> str:
        return "********"

    def __repr__(self) -> str:
        return "Secret(********)"

    def __eq__(self, other: object) -> bool:
        # Equal when both hold the same stored token (tokens differ per encryption).
        return isinstance(other, Secret) and self.token is not None and self.token == other.token

    def __hash__(self) -> int:
        return hash(self.token)


class _SecretDescriptor(DeferredAttribute):
    """Assigning a plain string wraps it, so the attribute is always a Secret (or None)."""

    def __set__(self, instance: models.Model, value: Any) -> None:
        if isinstance(value, str):
            value = Secret(plaintext=value)
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text column holding a Fernet token; the model attribute is a `Secret` (see module doc)."""

    descriptor_class = _SecretDescriptor

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Secret | None:
        return None if value is None else Secret(token=value)

    def to_python(self, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        return Secret(plaintext=str(value))

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = Secret(plaintext=value)
        if not isinstance(value, Secret):
            raise TypeError(
                f"EncryptedTextField takes a str or Secret, not {type(value).__name__}."
            )
        if value.token is not None:
            # Written back as stored: saving a row never needs (or re-checks) the key.
            return value.token
        return encrypt(value.reveal())

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata) carries the token, never the plaintext.
        value = self.value_from_object(obj)
        return self.get_prep_value(value) or ""
