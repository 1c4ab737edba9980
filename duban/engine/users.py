"""People who use the web UI and the API: users, passwords, sessions, API tokens, throttling.

Passwords are hashed with argon2id (argon2-cffi, its default parameters, rehashed when they
change). Session cookies and API tokens are random (`secrets.token_urlsafe`) and only their
SHA-256 is stored, so a copy of the database lets nobody sign in. Failed sign-ins are kept and
throttle further attempts per name and per address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, select, update

from duban.domain.text import clean_text
from duban.errors import AuthError, DubanError, Throttled
from duban.store import audit
from duban.store.db import Store
from duban.store.dialect import insert_for
from duban.store.models import (
    ApiToken,
    KnownDevice,
    LoginCounter,
    Organization,
    User,
    WebSession,
)

ROLES = ("admin", "institution", "auditor")
SESSION_LIFETIME = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=15)
#: failed sign-ins allowed within THROTTLE_WINDOW, per key (see `sign_in`)
THROTTLE_MAX = 5  # one name from one address, or one known device
ADDRESS_MAX = 20  # one address, whatever the names (password spraying)
ACCOUNT_MAX = 10  # one name from unknown devices, whatever the address (a botnet)
DEVICE_LIFETIME = timedelta(days=180)
MIN_PASSWORD = 10
NAME_MAX = 64  # a user name is an audit event's entity id (64 characters)

_hasher = PasswordHasher()
# verified against when the name is unknown, so both paths take the same time
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who is asking: what every request handler authorises against."""

    user_id: int
    name: str
    role: str
    org_id: int | None
    org_code: str | None

    @property
    def actor(self) -> str:
        return f"user:{self.name}"

    def can_see_org(self, org_id: int) -> bool:
        return self.role in ("admin", "auditor") or self.org_id == org_id


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _principal(user: User, org_code: str | None) -> Principal:
    return Principal(user.id, user.name, user.role, user.org_id, org_code)


def add_user(
    store: Store,
    *,
    name: str,
    role: str,
    org: str | None,
    password: str | None,
    now: datetime,
    actor: str = "cli",
) -> int:
    """Create a user; an institution user must name its organization, others must not."""
    if role not in ROLES:
        raise DubanError(f"role {role!r} is not one of {', '.join(ROLES)}")
    name = clean_text(name, field="user name", max_length=NAME_MAX, multiline=False)
    if not name:
        raise DubanError("a user needs a name")
    if (role == "institution") != (org is not None):
        raise DubanError(
            "an institution user needs --org ORG; administrators and auditors take no --org"
        )
    if password is not None and len(password) < MIN_PASSWORD:
        raise DubanError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    with store.write() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise DubanError(f"user {name!r} already exists; choose another name")
        org_id = None
        if org is not None:
            org_id = session.scalar(select(Organization.id).where(Organization.code == org))
            if org_id is None:
                raise DubanError(f"unknown organization {org!r}; see `duban plan show`")
        user = User(
            name=name,
            role=role,
            org_id=org_id,
            password_hash=_hasher.hash(password) if password else None,
            disabled=False,
            created_at=now,
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            now=now,
            actor=actor,
            action="user.added",
            entity="user",
            entity_id=name,
            data={"role": role, "org": org},
        )
        return user.id


def list_users(store: Store) -> list[dict[str, object]]:
    with store.read() as session:
        rows = session.execute(
            select(User, Organization.code)
            .outerjoin(Organization, Organization.id == User.org_id)
            .order_by(User.name)
        ).all()
        return [
            {
                "name": u.name,
                "role": u.role,
                "org": code,
                "disabled": u.disabled,
                "password": u.password_hash is not None,
                "created_at": u.created_at.isoformat(),
            }
            for u, code in rows
        ]


def disable_user(store: Store, *, name: str, now: datetime, actor: str = "cli") -> None:
    """Disable a user: their sessions end and their tokens stop working at once."""
    with store.write() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise DubanError(f"no user named {name!r}; see `duban user list`")
        user.disabled = True
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit.record(
            session,
            now=now,
            actor=actor,
            action="user.disabled",
            entity="user",
            entity_id=name,
            data={},
        )


def create_token(store: Store, *, name: str, label: str, now: datetime, actor: str = "cli") -> str:
    """A new personal API token for the user; shown once, stored only as its SHA-256."""
    token = "dbn_" + secrets.token_urlsafe(32)
    with store.write() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None or user.disabled:
            raise DubanError(f"no active user named {name!r}; see `duban user list`")
        session.add(
            ApiToken(token_hash=digest(token), user_id=user.id, label=label, created_at=now)
        )
        audit.record(
            session,
            now=now,
            actor=actor,
            action="token.created",
            entity="user",
            entity_id=name,
            data={"label": label},
        )
    return token


def revoke_tokens(store: Store, *, name: str, now: datetime, actor: str = "cli") -> int:
    with store.write() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
        if user_id is None:
            raise DubanError(f"no user named {name!r}; see `duban user list`")
        result = session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(preserve_rowcount=True)
        )
        audit.record(
            session,
            now=now,
            actor=actor,
            action="token.revoked",
            entity="user",
            entity_id=name,
            data={"count": getattr(result, "rowcount", 0)},
        )
        return int(getattr(result, "rowcount", 0))


def _keys(name: str, address: str, device: str | None) -> list[tuple[str, int]]:
    """The counters one attempt adds to, with their limits (OWASP ASVS 2.2.1 / the OWASP
    authentication cheat sheet's device cookies): a known device only counts against itself,
    so an attacker elsewhere cannot lock the account's owner out; an unknown client counts
    against its (name, address) pair, its address, and the account's unknown-client budget."""
    name = name[:100]
    if device is not None:
        return [(f"device:{device}", THROTTLE_MAX)]
    return [
        (f"pair:{address}|{name}", THROTTLE_MAX),
        (f"addr:{address}", ADDRESS_MAX),
        (f"name:{name}", ACCOUNT_MAX),
    ]


def _count_attempt(store: Store, keys: list[tuple[str, int]], now: datetime) -> str | None:
    """Count one attempt against every key, atomically, *before* the password is checked, so
    parallel attempts cannot all pass a check made before any of them was recorded. Returns
    the first key whose limit the attempt exceeds, or None."""
    since = now - THROTTLE_WINDOW
    over: str | None = None
    with store.write() as session:
        insert = insert_for(session)
        for key, limit in keys:
            table = LoginCounter.__table__.c
            fresh = table.window_start < since
            stmt = (
                insert(LoginCounter)
                .values(key=key[:200], window_start=now, failures=1)
                .on_conflict_do_update(
                    index_elements=["key"],
                    set_={
                        "failures": case((fresh, 1), else_=table.failures + 1),
                        "window_start": case((fresh, now), else_=table.window_start),
                    },
                )
                .returning(LoginCounter.failures)
            )
            failures = session.execute(stmt).scalar_one()
            if failures > limit and over is None:
                over = key
    return over


def _forget_attempt(store: Store, keys: list[tuple[str, int]], now: datetime) -> None:
    """A right password was given: this attempt was no failure. Its pair's and device's
    counters are cleared (a typing mistake is forgiven), and the address's and the account's
    lose the one count this attempt added (their earlier failures stand: they guard against
    many names and many places, and a colleague signing in must not use them up)."""
    clear = [k[:200] for k, _ in keys if k.startswith(("pair:", "device:"))]
    undo = [k[:200] for k, _ in keys if not k.startswith(("pair:", "device:"))]
    with store.write() as session:
        session.execute(delete(LoginCounter).where(LoginCounter.key.in_(clear)))
        session.execute(
            update(LoginCounter)
            .where(LoginCounter.key.in_(undo), LoginCounter.failures > 0)
            .values(failures=LoginCounter.failures - 1)
        )
        session.execute(
            delete(LoginCounter).where(LoginCounter.window_start < now - THROTTLE_WINDOW)
        )


def _known_device(store: Store, name: str, device_token: str | None) -> str | None:
    """The digest of the device cookie if it belongs to the named account, else None."""
    if not device_token:
        return None
    token_hash = digest(device_token)
    with store.read() as session:
        found = session.scalar(
            select(KnownDevice.token_hash)
            .join(User, User.id == KnownDevice.user_id)
            .where(KnownDevice.token_hash == token_hash, User.name == name)
        )
    return found


def sign_in(
    store: Store,
    *,
    name: str,
    password: str,
    address: str,
    now: datetime,
    device_token: str | None = None,
) -> tuple[str, str, str]:
    """Check the password; on success open a session and return (cookie token, CSRF token,
    device token).

    Refusals say the same thing for an unknown name and a wrong password. Every attempt is
    counted before the password is checked (see `_keys` for what is counted): past a limit
    within THROTTLE_WINDOW the attempt is refused without checking the password. A browser
    that signed in to the account before (its device cookie) is counted on its own, so
    guesses from elsewhere never lock the owner out; the returned device token is set as that
    cookie.
    """
    device = _known_device(store, name, device_token)
    keys = _keys(name, address, device)
    over = _count_attempt(store, keys, now)
    if over is not None:
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        raise Throttled(f"too many failed sign-ins; try again in {minutes} minutes")
    with store.read() as session:
        user = session.scalar(select(User).where(User.name == name))
    ok = False
    try:
        ok = _hasher.verify(
            user.password_hash if user and user.password_hash else _DUMMY_HASH, password
        )
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or user.disabled or user.password_hash is None:
        raise AuthError("wrong name or password, or the account is disabled")
    _forget_attempt(store, keys, now)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    new_device = device_token if device is not None else secrets.token_urlsafe(32)
    assert new_device is not None
    with store.write() as session:
        session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.execute(delete(KnownDevice).where(KnownDevice.last_seen_at < now - DEVICE_LIFETIME))
        if device is None:
            session.add(
                KnownDevice(
                    token_hash=digest(new_device), user_id=user.id, created_at=now, last_seen_at=now
                )
            )
        else:
            session.execute(
                update(KnownDevice).where(KnownDevice.token_hash == device).values(last_seen_at=now)
            )
        if _hasher.check_needs_rehash(user.password_hash):
            session.execute(
                update(User).where(User.id == user.id).values(password_hash=_hasher.hash(password))
            )
        session.add(
            WebSession(
                token_hash=digest(token),
                user_id=user.id,
                csrf=csrf,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
        audit.record(
            session,
            now=now,
            actor=f"user:{name}",
            action="user.signed_in",
            entity="user",
            entity_id=name,
            data={"address": address, "known_device": device is not None},
        )
    return token, csrf, new_device


def unlock(store: Store, *, name: str, now: datetime, actor: str = "cli") -> int:
    """Clear the failed-sign-in counts of a name (from every address), audited; for an
    administrator who cannot wait out THROTTLE_WINDOW. Returns how many counters were cleared."""
    name = name[:100]
    with store.write() as session:
        result = session.execute(
            delete(LoginCounter)
            .where(
                (LoginCounter.key == f"name:{name}")
                | LoginCounter.key.like(f"pair:%|{_like_literal(name)}", escape="\\")
            )
            .execution_options(preserve_rowcount=True)
        )
        count = int(getattr(result, "rowcount", 0))
        audit.record(
            session,
            now=now,
            actor=actor,
            action="user.unlocked",
            entity="user",
            entity_id=name[:64],
            data={"counters": count},
        )
    return count


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sign_out(store: Store, token: str) -> None:
    with store.write() as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))


def session_principal(store: Store, token: str, now: datetime) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session cookie, or None."""
    with store.read() as session:
        # the columns a principal needs, not the user's row as an object: this runs on
        # every request (a tenth of a page's time when it loaded the whole user)
        row = session.execute(
            select(User.id, User.name, User.role, User.org_id, Organization.code, WebSession.csrf)
            .join(WebSession, WebSession.user_id == User.id)
            .outerjoin(Organization, Organization.id == User.org_id)
            .where(
                WebSession.token_hash == digest(token),
                WebSession.expires_at > now,
                User.disabled.is_(False),
            )
        ).first()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], row[3], row[4]), row[5]


def token_principal(store: Store, token: str) -> Principal | None:
    """The principal of a live API token, or None."""
    with store.read() as session:
        row = session.execute(
            select(User, Organization.code)
            .join(ApiToken, ApiToken.user_id == User.id)
            .outerjoin(Organization, Organization.id == User.org_id)
            .where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
        ).first()
    if row is None or row[0].disabled:
        return None
    return _principal(row[0], row[1])


def has_admin(store: Store) -> bool:
    with store.read() as session:
        return (
            session.scalar(
                select(User.id).where(User.role == "admin", User.disabled.is_(False)).limit(1)
            )
            is not None
        )
