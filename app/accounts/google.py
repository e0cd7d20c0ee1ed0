"""Google sign-in (OpenID Connect through authlib) and the rules for Google identities.

authlib keeps the state and the nonce in the session and checks both on the way back (the
nonce inside the signed ID token). People are keyed by Google's `sub`, never by e-mail: a
Google sign-in whose e-mail matches an existing account is refused, and linking only
happens from inside the account.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, session
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from app.accounts.models import Identity, User
from app.accounts.services import AccountError, normalize_email
from app.db_types import utcnow
from app.errors import NotFound
from app.extensions import db, get_settings
from app.privacy_policy import POLICY_VERSION

PROVIDER = "google"
INTENTS = ("sign-in", "link", "reauth")
PENDING_KEY = "google_pending"
PENDING_MAX_AGE_S = 15 * 60
REAUTH_KEY = "google_reauth_at"
REAUTH_MAX_AGE_S = 10 * 60
HTTP_TIMEOUT_S = 10


class GoogleError(Exception):
    """Google sign-in did not complete or cannot be used; the message is for the person."""


@dataclass(frozen=True)
class GoogleProfile:
    """Who Google says signed in."""

    subject: str
    email: str
    name: str


def init_google(app: Flask) -> None:
    """Register the Google client on `app` when a client id and secret are configured."""
    settings = app.extensions["attune.settings"]
    if not (settings.google_client_id and settings.google_client_secret):
        return
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        server_metadata_url=settings.google_discovery_url,
        client_kwargs={"scope": "openid email profile", "timeout": HTTP_TIMEOUT_S},
    )
    app.extensions["attune.google"] = oauth


def is_enabled() -> bool:
    """True when Google sign-in is configured."""
    return "attune.google" in current_app.extensions


def _client() -> Any:
    oauth = current_app.extensions.get("attune.google")
    if oauth is None:
        raise NotFound("Google sign-in is not configured")
    return oauth.create_client(PROVIDER)


def start(intent: str) -> Response:
    """Redirect to Google; the intent (sign in, link, re-authenticate) waits in the session."""
    if intent not in INTENTS:
        raise GoogleError("Unknown Google sign-in request.")
    client = _client()
    session["google_intent"] = intent
    redirect_uri = get_settings().base_url.rstrip("/") + "/sign-in/google/callback"
    extra = {"prompt": "login", "max_age": 0} if intent == "reauth" else {}
    try:
        return client.authorize_redirect(redirect_uri, **extra)
    except (AuthlibBaseError, requests.RequestException) as exc:
        raise GoogleError("Google sign-in is unavailable right now. Try again later.") from exc


def finish() -> tuple[str, GoogleProfile]:
    """Check state, nonce and the ID token; return the intent and the verified profile."""
    intent = session.pop("google_intent", "sign-in")
    try:
        token = _client().authorize_access_token()
    except (AuthlibBaseError, JoseError, requests.RequestException, ValueError) as exc:
        raise GoogleError("Google sign-in did not complete. Please try again.") from exc
    claims = token.get("userinfo") or {}
    if not claims.get("sub") or not claims.get("email"):
        raise GoogleError("Google did not tell us who you are. Please try again.")
    if claims.get("email_verified") is not True:
        raise GoogleError("Your Google e-mail address is not verified, so it cannot be used here.")
    email = normalize_email(str(claims["email"]))
    name = str(claims.get("name") or email.split("@", 1)[0])[:120]
    return intent, GoogleProfile(str(claims["sub"]), email, name)


def user_for(profile: GoogleProfile) -> User | None:
    """The account linked to this Google identity, if any."""
    query = (
        select(User)
        .join(Identity)
        .where(Identity.provider == PROVIDER, Identity.subject == profile.subject)
    )
    return db.session.scalar(query)


def google_identity(user: User) -> Identity | None:
    """The person's linked Google identity, if any."""
    query = select(Identity).where(Identity.user_id == user.id, Identity.provider == PROVIDER)
    return db.session.scalar(query)


def email_in_use(profile: GoogleProfile) -> bool:
    """True when an account already uses the Google address (it must link from inside)."""
    return db.session.scalar(select(User.id).where(User.email == profile.email)) is not None


def link(user: User, profile: GoogleProfile) -> Identity:
    """Link the Google identity to the signed-in account."""
    owner = user_for(profile)
    if owner is not None and owner.id != user.id:
        raise AccountError("google", "This Google account is linked to another Attune account.")
    existing = google_identity(user)
    if existing is not None:
        if existing.subject == profile.subject:
            return existing
        raise AccountError("google", "Another Google account is linked. Unlink it first.")
    identity = Identity(
        user_id=user.id, provider=PROVIDER, subject=profile.subject, email=profile.email
    )
    db.session.add(identity)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AccountError("google", "This Google account is linked to another account.") from exc
    return identity


def unlink(user: User) -> None:
    """Remove the Google link; refused when it is the only way to sign in."""
    identity = google_identity(user)
    if identity is None:
        return
    if not user.has_password:
        raise AccountError("google", "Set a password first, or you could not sign in any more.")
    db.session.delete(identity)
    db.session.commit()


def remember_pending(profile: GoogleProfile) -> None:
    """Keep a new Google person in the (signed) session until they confirm they are 18+."""
    session[PENDING_KEY] = {
        "sub": profile.subject,
        "email": profile.email,
        "name": profile.name,
        "at": time.time(),
    }


def pending_profile() -> GoogleProfile | None:
    """The Google person waiting to confirm sign-up, while the wait is fresh."""
    data = session.get(PENDING_KEY)
    if not data or time.time() - float(data.get("at", 0)) > PENDING_MAX_AGE_S:
        return None
    return GoogleProfile(data["sub"], data["email"], data["name"])


def create_user(profile: GoogleProfile, name: str, company: str | None, adult: bool) -> User:
    """Create the Google-only account once the person confirmed they are 18 or older."""
    if not adult:
        raise AccountError("adult", "You must be 18 or older to use Attune.")
    if user_for(profile) is not None or email_in_use(profile):
        raise AccountError("email", "An account with this e-mail already exists. Sign in instead.")
    now = utcnow()
    user = User(
        name=(name.strip() or profile.name)[:120],
        email=profile.email,
        company=(company or "").strip() or None,
        password_hash=None,
        adult_confirmed_at=now,
        email_verified_at=now,
        policy_version=POLICY_VERSION,
    )
    db.session.add(user)
    db.session.flush()
    db.session.add(
        Identity(user_id=user.id, provider=PROVIDER, subject=profile.subject, email=profile.email)
    )
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AccountError("email", "An account with this e-mail already exists.") from exc
    session.pop(PENDING_KEY, None)
    return user


def remember_reauth(user: User, profile: GoogleProfile) -> None:
    """A fresh Google sign-in by the account's own Google identity (to confirm a deletion)."""
    identity = google_identity(user)
    if identity is None or identity.subject != profile.subject:
        raise GoogleError("That is not the Google account linked to this Attune account.")
    session[REAUTH_KEY] = time.time()


def recently_reauthenticated() -> bool:
    """True within a few minutes of a fresh Google sign-in in this session."""
    return time.time() - float(session.get(REAUTH_KEY, 0)) <= REAUTH_MAX_AGE_S
