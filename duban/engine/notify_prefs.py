"""People's notification preferences (digest-only), by e-mail address."""

from __future__ import annotations

from sqlalchemy import select

from duban.store.db import Store
from duban.store.models import RecipientPref


def set_digest_only(store: Store, email: str, digest_only: bool) -> None:
    with store.write() as session:
        session.merge(RecipientPref(email=email.strip().lower(), digest_only=digest_only))


def digest_only_people(store: Store) -> list[str]:
    with store.read() as session:
        return list(
            session.scalars(
                select(RecipientPref.email)
                .where(RecipientPref.digest_only)
                .order_by(RecipientPref.email)
            )
        )
