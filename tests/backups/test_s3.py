"""Backups to S3-compatible storage, against moto's standalone server (the real S3 wire
protocol over HTTP on loopback): create, the object is encrypted, verify, restore, prune."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from django.db import connection

from penguinmails.backups.models import Backup, BackupStatus
from penguinmails.backups.storage import get_storage
from tests.backups.conftest import add_leads, lead_emails, run
from tests.conftest import Cast

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("moto server did not start")
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def s3(settings: Any, s3_endpoint: str, tmp_path: Any) -> Any:
    settings.BACKUP_STORAGE = "s3"
    settings.BACKUP_S3_BUCKET = "pm-backups"
    settings.BACKUP_S3_PREFIX = "prod"
    settings.BACKUP_S3_ENDPOINT_URL = s3_endpoint
    settings.BACKUP_S3_REGION = "us-east-1"
    settings.BACKUP_S3_ACCESS_KEY_ID = "testing"
    settings.BACKUP_S3_SECRET_ACCESS_KEY = "testing"
    settings.BACKUP_WORK_DIR = str(tmp_path)
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    if "pm-backups" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="pm-backups")
    return client


def test_it_backs_up_to_s3_verifies_and_restores(cast: Cast, s3: Any) -> None:
    acme = cast.tenant.schema_name
    add_leads(acme, "s3-a@example.com")
    run("backup", "create", "--tenant", "acme")
    backup = Backup.objects.get()
    assert backup.storage == "s3" and backup.status == BackupStatus.COMPLETED
    stored = s3.get_object(Bucket="pm-backups", Key=f"prod/{backup.path}")["Body"].read()
    assert len(stored) == backup.size and stored.startswith(b"PMBK")
    assert b"s3-a@example.com" not in stored

    assert f"backup #{backup.pk} verified" in run("backup", "verify", "--backup", str(backup.pk))[0]
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{acme}".campaigns_lead')  # noqa: S608 - our schema
    run("backup", "restore", "--tenant", "acme")
    assert lead_emails(acme, "s3-") == {"s3-a@example.com"}


def test_prune_deletes_the_object(cast: Cast, s3: Any, settings: Any) -> None:
    run("backup", "create", "--tenant", "globex")
    run("backup", "create", "--tenant", "globex")
    old, new = Backup.objects.order_by("pk")
    settings.BACKUP_KEEP_DAILY = settings.BACKUP_KEEP_WEEKLY = settings.BACKUP_KEEP_MONTHLY = 0
    run("backup", "prune")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="pm-backups").get("Contents", [])]
    assert f"prod/{old.path}" not in keys and f"prod/{new.path}" in keys


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(s3: Any) -> None:
    data = os.urandom(40 * 1024 * 1024)  # above the 16 MiB part size: a multipart upload
    storage = get_storage("s3")
    storage.put("big/test.bin", io.BytesIO(data))
    head = s3.head_object(Bucket="pm-backups", Key="prod/big/test.bin")
    assert head["ContentLength"] == len(data) and "-" in head["ETag"]  # a multipart ETag
    digest = hashlib.sha256()
    with storage.open("big/test.bin") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(data).digest()
    storage.delete("big/test.bin")
