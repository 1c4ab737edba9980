"""Text that people write (reasons, notes, file names, event notes): capped and clean.

Such text is stored for good (the audit trail is append-only) and shown in pages, mails and
spreadsheets, so it is checked once, where it enters: at most a stated number of characters,
no control characters but line breaks and tabs, and no lone surrogates (they cannot be encoded
as UTF-8, so a page, a mail or an XLSX file holding one could never be written).
"""

from __future__ import annotations

import unicodedata

from duban.errors import InvalidText

#: reasons (reject, waive) and notes: long enough for a paragraph or two, never a file
REASON_MAX = 2000
NOTE_MAX = 4000
#: a file name as stored and shown (the file system's own limit is 255 bytes)
FILENAME_MAX = 200
_KEPT_CONTROLS = {"\n", "\t"}


def clean_text(value: str, *, field: str, max_length: int, multiline: bool = True) -> str:
    """`value` stripped of surrounding white space, or InvalidText naming the field.

    Refused: more than `max_length` characters; a lone surrogate; any control character (C0,
    DEL, C1) other than a line break or a tab (a carriage return is folded into the line
    break); with multiline=False, line breaks and tabs too.
    """
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > max_length:
        raise InvalidText(
            field, f"{len(text)} characters is more than the {max_length} allowed; shorten it"
        )
    for ch in text:
        kind = unicodedata.category(ch)
        if kind == "Cs":
            raise InvalidText(field, "holds an unpaired surrogate, which is not text; retype it")
        if kind == "Cc" and (not multiline or ch not in _KEPT_CONTROLS):
            raise InvalidText(
                field, f"holds the control character U+{ord(ch):04X}; remove it and send again"
            )
    return text
