"""Messages written straight to the wire read back exactly as the MIME-built ones."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from duban.notify.render import Rendered, to_email
from duban.notify.wire import compose, wire_bytes

FROM = "duban@xinfeng.example.org"
LONG = "【督办提醒】一号医院：季度急救演练（2022-Q2）截止 2022-06-30" * 3


@pytest.mark.parametrize(
    "subject", [LONG, "Reminder: quarterly drill due 2022-06-30", "😀 emoji 与中文 mixed"]
)
def test_composed_message_reads_back_like_the_mime_one(subject):
    rendered = Rendered(
        to="duty@h1.example.org",
        subject=subject,
        text="你好，Hello\n" * 200,
        html="<p>你好 &amp; hello</p>\n" * 200,
        kind="reminder",
        key="reminder:42:-7:duty:duty@h1.example.org",
    )
    ours = message_from_bytes(wire_bytes(compose(rendered, mail_from=FROM)), policy=policy.default)
    theirs = message_from_bytes(
        to_email(rendered, mail_from=FROM).as_bytes(), policy=policy.default
    )
    for name in ("From", "To", "Subject", "Message-ID", "X-Duban-Kind", "X-Duban-Key"):
        assert str(ours[name]) == str(theirs[name]), name
    assert ours.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        assert ours.get_body((kind,)).get_content() == theirs.get_body((kind,)).get_content()
    raw = wire_bytes(compose(rendered, mail_from=FROM))
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")), "every line folded"
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_composed_message_overrides_its_kind_and_refuses_header_injection():
    rendered = Rendered(to="a@b.org", subject="s", text="t", html="h", kind="failure", key="k")
    assert compose(rendered, mail_from=FROM, kind="escalation")["X-Duban-Kind"] == "escalation"
    evil = Rendered(
        to="a@b.org\r\nBcc: x@y.org", subject="s", text="t", html="h", kind="k", key="k"
    )
    with pytest.raises(ValueError, match="the To header cannot hold"):
        compose(evil, mail_from=FROM)
