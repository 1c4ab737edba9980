"""What the JSON API answers, declared so that /openapi.json tells a client the truth."""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from duban.catalog.schema import EvidenceKind
from duban.domain.text import NOTE_MAX

#: `Authorization: Bearer <token>` (`duban user token NAME`); a browser session works too
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="a personal API token from `duban user token NAME`",
)


class Health(BaseModel):
    status: str = Field(description="ok")


class Me(BaseModel):
    name: str
    role: str = Field(description="admin, institution or auditor")
    org: str | None = Field(description="the institution's code, for an institution user")


class ActionResult(BaseModel):
    id: int
    state: str = Field(description="the task's state after the action")


class StoredOut(BaseModel):
    evidence_id: int
    sha256: str
    size: int
    media_type: str


class Uploaded(BaseModel):
    evidence: list[StoredOut] = Field(description="the files stored (a note alone stores none)")


#: a note: plain text (no control characters but tab and line breaks), not only spaces
_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
NOTE = rf"^{_TEXT}*[^\s\x00-\x1f\x7f-\x9f]{_TEXT}*$"


def upload_body(max_files: int) -> dict[str, Any]:
    """The evidence upload's multipart body, for the schema (the handler reads the stream
    itself so that it can refuse an oversized upload before reading it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "minItems": 1,
                                "maxItems": max_files,
                            },
                            "kind": {
                                "type": "string",
                                "enum": [k.value for k in EvidenceKind],
                                "description": "an evidence kind the duty asks for, or other "
                                "(another kind answers 409)",
                            },
                            "note": {"type": "string", "maxLength": NOTE_MAX, "pattern": NOTE},
                        },
                        # at least one file, or a note with something written in it
                        "anyOf": [{"required": ["files"]}, {"required": ["note"]}],
                    }
                }
            },
        }
    }
