"""Evidence files: bounded, type-checked, stored by SHA-256 outside anything the web serves.

A file is accepted only if its first bytes are one of the kinds an institution submits (PDF,
JPEG, PNG, Office documents: OOXML .docx/.xlsx/.pptx checked as a real zip package, legacy
.doc/.xls/.ppt by their OLE signature) and its name's extension agrees with them; the
browser's Content-Type is never trusted. The content is written once, to
`<evidence_dir>/<sha[:2]>/<sha>`, atomically (temporary file, fsync, rename), so the same file
uploaded twice is stored once and a crash leaves no half file under a real name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import BinaryIO

from duban.domain.text import FILENAME_MAX, clean_text
from duban.engine.actions import attach_evidence
from duban.errors import StorageError, StorageFull, UploadError, UploadTooLarge
from duban.store.db import Store

CHUNK = 1 << 16

OOXML = {
    ".docx": ("word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".xlsx": ("xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".pptx": ("ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
}
OLE = {".doc": "application/msword", ".xls": "application/vnd.ms-excel"}
OLE[".ppt"] = "application/vnd.ms-powerpoint"
ACCEPTED = [".pdf", ".jpg", ".jpeg", ".png", ".docx", ".xlsx", ".pptx", ".doc", ".xls", ".ppt"]


@dataclass(frozen=True)
class Stored:
    evidence_id: int
    sha256: str
    size: int
    media_type: str


def media_type(name: str, head: bytes, path: Path) -> str:
    """The media type the content proves, or UploadError naming what is accepted."""
    ext = PurePath(name).suffix.lower()
    if ext not in ACCEPTED:
        raise UploadError(
            f"{name}: files of type {ext or '(no extension)'} are not accepted; "
            f"send one of {', '.join(ACCEPTED)}"
        )
    if ext == ".pdf" and head.startswith(b"%PDF-"):
        return "application/pdf"
    if ext in (".jpg", ".jpeg") and head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if ext == ".png" and head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if ext in OLE and head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE[ext]
    if ext in OOXML and head.startswith(b"PK\x03\x04"):
        folder, kind = OOXML[ext]
        try:
            with zipfile.ZipFile(path) as package:
                names = package.namelist()
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            ValueError,
            EOFError,
            NotImplementedError,
            RuntimeError,
        ):
            names = []  # a damaged or hostile package is not the document it claims to be
        if "[Content_Types].xml" in names and any(n.startswith(folder) for n in names):
            return kind
    raise UploadError(f"{name}: the content is not a {ext[1:].upper()} file; nothing was stored")


def store_upload(
    store: Store,
    *,
    folder: Path,
    task_id: int,
    filename: str,
    stream: BinaryIO,
    max_bytes: int,
    actor: str,
    now: datetime,
    kind: str = "file",
) -> Stored:
    """Read `stream` (at most max_bytes), check it, store it by hash, attach it to the task."""
    name = PurePath(filename.replace("\\", "/")).name.strip() or "upload"
    name = clean_text(name, field="file name", max_length=FILENAME_MAX, multiline=False)
    try:
        digest, size, kind_type = _write(folder, name, stream, max_bytes)
    except OSError as exc:
        raise _storage_error(folder, exc) from exc
    with store.write() as session:
        ev = attach_evidence(
            session,
            task_id,
            actor=actor,
            now=now,
            kind=kind,
            audit_data={"file": name, "sha256": digest, "size": size},
            sha256=digest,
            filename=name[:255],
            media_type=kind_type,
            size=size,
        )
        return Stored(ev.id, digest, size, kind_type)


def _storage_error(folder: Path, exc: OSError) -> StorageError:
    """What to tell a person when the evidence folder cannot take the file."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(
            f"the evidence folder {folder} is full; nothing was stored. Free space on its disk "
            "(or point evidence_dir elsewhere), then upload again"
        )
    return StorageError(
        f"the evidence folder {folder} cannot be written ({exc.strerror or exc}); nothing was "
        "stored. Make it writable for duban (or point evidence_dir elsewhere), then upload again"
    )


def _write(folder: Path, name: str, stream: BinaryIO, max_bytes: int) -> tuple[str, int, str]:
    """Copy the upload under its SHA-256 (atomically); returns (sha256, size, media type)."""
    folder.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(
                        f"{name}: larger than the limit of {max_bytes // (1024 * 1024)} MiB; "
                        "nothing was stored"
                    )
                sha.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise UploadError(f"{name}: the file is empty; nothing was stored")
        with tmp.open("rb") as f:
            head = f.read(16)
        kind_type = media_type(name, head, tmp)
        digest = sha.hexdigest()
        target = folder / digest[:2] / digest
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            tmp.unlink()
        else:
            tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest, size, kind_type


def evidence_path(folder: Path, sha256: str) -> Path:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise UploadError("not a SHA-256")
    return folder / sha256[:2] / sha256
