"""Secrets at rest with real Fernet keys: rotation, wrong keys, and the lazy model field."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection, models
from django.test import override_settings

from penguinmails import crypto
from penguinmails.crypto import EncryptedTextField, Secret, SecretUnavailable

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
STRANGER = Fernet.generate_key().decode()


class SecretHolder(models.Model):
    """A table for this test only (created as a temporary table; no migration)."""

    label = models.CharField(max_length=20)
    password = EncryptedTextField(null=True)

    class Meta:
        app_label = "penguinmails"
        managed = False
        db_table = "test_crypto_secret_holder"

    def __str__(self) -> str:
        return self.label


def test_it_round_trips_a_secret() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        token = crypto.encrypt("app-password-é")
        assert token != "app-password-é"
        assert "app-password" not in token
        assert crypto.decrypt(token) == "app-password-é"


def test_it_still_decrypts_with_the_old_key_second_and_rotates_to_the_newest() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        old_token = crypto.encrypt("s3cret")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert crypto.decrypt(old_token) == "s3cret"
        assert crypto.is_current(old_token) is False
        new_token = crypto.rotate(old_token)
        assert crypto.is_current(new_token) is True
    # The rotated token no longer needs the old key.
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert crypto.decrypt(new_token) == "s3cret"
        with pytest.raises(SecretUnavailable):
            crypto.decrypt(old_token)


def test_it_names_the_setting_when_the_key_is_wrong() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        token = crypto.encrypt("s3cret")
    with override_settings(FIELD_ENCRYPTION_KEYS=[STRANGER]):
        with pytest.raises(SecretUnavailable, match="FIELD_ENCRYPTION_KEYS") as caught:
            crypto.decrypt(token)
        with pytest.raises(SecretUnavailable):
            crypto.rotate(token)
    assert "s3cret" not in caught.value.message


def test_it_names_the_setting_when_no_key_is_configured() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[]):
        with pytest.raises(SecretUnavailable, match="FIELD_ENCRYPTION_KEYS is empty"):
            crypto.encrypt("x")


def test_it_rejects_a_malformed_key_without_echoing_it() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, "not-a-fernet-key"]):
        with pytest.raises(SecretUnavailable, match="entry 2") as caught:
            crypto.encrypt("x")
    assert "not-a-fernet-key" not in caught.value.message


def test_it_keeps_the_secret_out_of_str_and_repr() -> None:
    holder = SecretHolder(label="a", password="hunter2")
    assert isinstance(holder.password, Secret)
    assert "hunter2" not in str(holder.password) + repr(holder.password)
    assert holder.password.reveal() == "hunter2"


def test_it_loads_rows_whose_key_is_lost_and_fails_only_on_reveal() -> None:
    field = SecretHolder._meta.get_field("password")
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        stored = field.get_prep_value("hunter2")
    with override_settings(FIELD_ENCRYPTION_KEYS=[STRANGER]):
        loaded = field.from_db_value(stored, None, connection)
        assert isinstance(loaded, Secret)
        # Saving it back writes the stored token unchanged, without needing the key.
        assert field.get_prep_value(loaded) == stored
        with pytest.raises(SecretUnavailable, match="FIELD_ENCRYPTION_KEYS"):
            loaded.reveal()


@pytest.mark.django_db
def test_it_stores_ciphertext_in_the_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE test_crypto_secret_holder "
            "(id bigserial PRIMARY KEY, label varchar(20), password text NULL)"
        )
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        SecretHolder.objects.create(label="a", password="hunter2")
        SecretHolder.objects.create(label="none", password=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT password FROM test_crypto_secret_holder WHERE label = 'a'")
            (raw,) = cursor.fetchone()
        assert "hunter2" not in raw
        assert crypto.decrypt(raw) == "hunter2"

        row = SecretHolder.objects.get(label="a")
        assert isinstance(row.password, Secret)
        assert row.password.reveal() == "hunter2"
        assert SecretHolder.objects.get(label="none").password is None

        row.password = "rotated-pass"
        row.save()
        assert SecretHolder.objects.get(label="a").password.reveal() == "rotated-pass"
    with override_settings(FIELD_ENCRYPTION_KEYS=[STRANGER]):
        row = SecretHolder.objects.get(label="a")  # loading never needs the key
        with pytest.raises(SecretUnavailable):
            row.password.reveal()
