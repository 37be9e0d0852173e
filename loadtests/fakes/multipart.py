"""``multipart/form-data`` bodies, parsed with the stdlib ``email`` package (no extra dependency)."""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
from email.message import Message


@dataclasses.dataclass(frozen=True)
class FormPart:
    """One form field: a file when ``filename`` is set (possibly to ""), else a text value."""

    name: str
    filename: str | None
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes) -> list[FormPart]:
    """The parts of a multipart form; ``ValueError`` if this is not one."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise ValueError("expected a multipart/form-data body with a boundary")
    # The parser wants a whole MIME message, so give it a one-header head of our own.
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise ValueError("malformed multipart/form-data body")
    return [_form_part(part) for part in message.get_payload() if isinstance(part, Message)]


def _form_part(part: Message) -> FormPart:
    name = part.get_param("name", header="content-disposition")
    filename = part.get_param("filename", header="content-disposition")
    payload = part.get_payload(decode=True)
    return FormPart(
        name=name if isinstance(name, str) else "",
        filename=filename if isinstance(filename, str) else None,
        content=payload if isinstance(payload, bytes) else b"",
    )
