"""Where encrypted backups are kept: a directory (BACKUP_DIR) or S3-compatible storage
(BACKUP_S3_*), chosen by BACKUP_STORAGE. Both stream: nothing holds a whole dump in memory."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from penguinmails.errors import DomainError


class StorageError(DomainError):
    status_code = 503
    code = "backup_storage_error"


class Storage(Protocol):
    name: str

    def put(self, key: str, stream: IO[bytes]) -> None: ...

    def open(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def delete(self, key: str) -> None: ...

    def where(self, key: str) -> str: ...


class DirectoryStorage:
    name = "dir"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"Backup key {key!r} points outside BACKUP_DIR.")
        return path

    def put(self, key: str, stream: IO[bytes]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        # Written under another name and renamed when complete: a crash leaves no file that
        # looks like a finished backup.
        with open(partial, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            shutil.copyfileobj(stream, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        path = self._path(key)
        if not path.exists():
            raise StorageError(f"Backup file {path} is missing.")
        with open(path, "rb") as handle:
            yield handle

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".partial").unlink(missing_ok=True)

    def where(self, key: str) -> str:
        return str(self._path(key))


class S3Storage:
    name = "s3"

    def __init__(self) -> None:
        import boto3  # imported only when S3 is configured: a directory setup never needs it

        if not settings.BACKUP_S3_BUCKET:
            raise ImproperlyConfigured("BACKUP_STORAGE=s3 needs BACKUP_S3_BUCKET.")
        self.bucket = settings.BACKUP_S3_BUCKET
        self.prefix = settings.BACKUP_S3_PREFIX.strip("/")
        options: dict[str, Any] = {"region_name": settings.BACKUP_S3_REGION or None}
        if settings.BACKUP_S3_ENDPOINT_URL:
            options["endpoint_url"] = settings.BACKUP_S3_ENDPOINT_URL
        if settings.BACKUP_S3_ACCESS_KEY_ID:
            options["aws_access_key_id"] = settings.BACKUP_S3_ACCESS_KEY_ID
            options["aws_secret_access_key"] = settings.BACKUP_S3_SECRET_ACCESS_KEY
        self.client = boto3.client("s3", **options)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, stream: IO[bytes]) -> None:
        from boto3.s3.transfer import TransferConfig

        # upload_fileobj reads the stream part by part (a multipart upload); parts in flight are
        # bounded, so memory stays at a few parts whatever the dump's size.
        config = TransferConfig(multipart_chunksize=16 * 1024 * 1024, max_concurrency=4)
        try:
            self.client.upload_fileobj(stream, self.bucket, self._key(key), Config=config)
        except Exception as exc:  # botocore's errors share no useful base we could name
            raise StorageError(
                f"Upload to s3://{self.bucket}/{self._key(key)} failed: {exc}"
            ) from exc

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except Exception as exc:
            raise StorageError(f"Download of {self.where(key)} failed: {exc}") from exc
        try:
            yield body
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def get_storage(name: str | None = None) -> Storage:
    """The configured storage, or the one a backup record names (it may predate a change)."""
    name = name or settings.BACKUP_STORAGE
    if name == "dir":
        return DirectoryStorage(Path(settings.BACKUP_DIR))
    if name == "s3":
        return S3Storage()
    raise ImproperlyConfigured(f"BACKUP_STORAGE must be dir or s3, not {name!r}.")
