"""Configuration: safe defaults, then ``PORTAL_*`` variables (and ``.env``), then overrides.

Flask's ``from_prefixed_env`` turns ``PORTAL_MAIL_PORT=2525`` into ``MAIL_PORT = 2525``; the
names Flask's extensions read (``MAIL_*``, ``SQLALCHEMY_DATABASE_URI``, ``RATELIMIT_*``) are
derived here from ours, so an operator only ever sets ``PORTAL_`` variables. The app code
reads the typed, frozen :class:`Settings` rather than the loose dict.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask, current_app

from portal import production, ratelimit_store
from portal.policy.appeals import APPEAL_CLOCK_DAYS, APPEAL_CONFIRM_HOURS
from portal.policy.mail import ACKS_PER_ADDRESS_PER_DAY

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # default: SQLite in the instance folder
    "SECRET_KEY": None,  # default: generated once and kept in the instance folder
    # "production" makes missing secrets a refusal to start instead of a generated default.
    "ENV": "development",
    # Keys the audit trail's hash chain. Kept outside the database, so that someone who can
    # write to it cannot recompute the chain after an edit. Default (development only): derived
    # from the secret key.
    "AUDIT_KEY": None,
    "MAIL_SERVER": "",  # empty: write outgoing mail to instance/outbox/ instead
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    # Flask-Mail would silence itself under TESTING; our tests talk to a real SMTP server.
    "MAIL_SUPPRESS_SEND": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DOMAIN": "portal.example.org",  # right-hand side of our Message-IDs
    # Seconds any one SMTP operation may take: a server that accepts the connection and never
    # answers must not hold the delivery worker (and the mail queued behind) for minutes.
    "MAIL_TIMEOUT": 30,
    # Attempts at a mail the server keeps refusing for now (4xx, down) before it is marked
    # failed and shown as such on its case; a permanent refusal (5xx) fails it at once.
    "MAIL_MAX_ATTEMPTS": 10,
    # How often the delivery worker (`outbox run`) looks for due mail and stored jobs.
    "OUTBOX_POLL_SECONDS": 2.0,
    # /healthz fails when a mail has been due this long: no delivery worker is running.
    "HEALTH_MAIL_MAX_AGE_MINUTES": 30,
    "ADDRESS_CA": "ca@example.org",
    "ADDRESS_APPEALS": "appeals@example.org",
    "ADDRESS_LEGAL": "legal@example.org",
    "IMAP_CA_URL": None,
    "IMAP_APPEALS_URL": None,
    "OUTBOX_DIR": None,  # default: instance/outbox
    "BLOB_DIR": None,  # default: instance/blobs
    "REQUEST_RATE_LIMIT": "10 per hour",
    "ACKS_PER_ADDRESS_PER_DAY": ACKS_PER_ADDRESS_PER_DAY,  # portal.policy.mail
    # Where rate-limit counters live: memory:// (one process only: development),
    # database:// (the portal's own database) or redis://HOST:6379/0 (needs the redis package).
    "RATELIMIT_STORAGE_URI": "memory://",
    "SESSION_COOKIE_SECURE": False,  # set PORTAL_SESSION_COOKIE_SECURE=true behind HTTPS
    "SITE_NAME": "Office Actions Portal",
    # A staff session ends after a working day, whatever happens in between, and after an
    # hour without a request (a screen left unlocked over lunch).
    "STAFF_SESSION_HOURS": 10,
    "STAFF_IDLE_MINUTES": 60,
    # Reverse proxies in front of the app that add X-Forwarded-For (0: none, the client
    # connects directly). Per-address limits see the client only when this is right.
    "TRUSTED_PROXIES": 0,
    # Someone who opened the reply box this recently is "probably answering".
    "REPLY_PRESENCE_MINUTES": 10,
    # Where the public reaches the portal: links in mail (appeal confirmations) start here,
    # never from the Host header of a request, which the sender of the request controls.
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # Appeals: the review committee's policy clock and how long a confirmation link lives
    # (the rules' own defaults, portal.policy.appeals), and how often one connection (or one
    # appellant address) may file or load the appeal pages.
    "APPEAL_CLOCK_DAYS": APPEAL_CLOCK_DAYS,
    "APPEAL_CONFIRM_HOURS": APPEAL_CONFIRM_HOURS,
    "APPEAL_RATE_LIMIT": "10 per hour",
    "APPEAL_ADDRESS_RATE_LIMIT": "5 per day",
    "APPEAL_PAGE_RATE_LIMIT": "60 per hour",
    # No request body is larger than an appeal with its five 10 MB attachments (plus its
    # text): refused with a 413 before anything reads it into memory or onto disk.
    "MAX_CONTENT_LENGTH": 52 * 1024 * 1024,
}


@dataclass(frozen=True)
class Settings:
    database_url: str
    mail_server: str
    mail_domain: str
    address_ca: str
    address_appeals: str
    address_legal: str
    imap_ca_url: str | None
    imap_appeals_url: str | None
    outbox_dir: Path
    blob_dir: Path
    request_rate_limit: str
    acks_per_address_per_day: int
    site_name: str
    audit_key: bytes = b""
    mail_port: int = DEFAULTS["MAIL_PORT"]
    mail_use_tls: bool = False
    mail_use_ssl: bool = False
    mail_username: str | None = None
    mail_password: str | None = None
    mail_timeout: float = DEFAULTS["MAIL_TIMEOUT"]
    mail_max_attempts: int = DEFAULTS["MAIL_MAX_ATTEMPTS"]
    outbox_poll_seconds: float = DEFAULTS["OUTBOX_POLL_SECONDS"]
    public_url: str = DEFAULTS["PUBLIC_URL"]
    appeal_clock_days: int = DEFAULTS["APPEAL_CLOCK_DAYS"]
    appeal_confirm_hours: int = DEFAULTS["APPEAL_CONFIRM_HOURS"]
    staff_session: timedelta = timedelta(hours=DEFAULTS["STAFF_SESSION_HOURS"])
    staff_idle: timedelta = timedelta(minutes=DEFAULTS["STAFF_IDLE_MINUTES"])
    trusted_proxies: int = DEFAULTS["TRUSTED_PROXIES"]
    health_mail_max_age: timedelta = timedelta(minutes=DEFAULTS["HEALTH_MAIL_MAX_AGE_MINUTES"])

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            database_url=config["SQLALCHEMY_DATABASE_URI"],
            mail_server=config["MAIL_SERVER"] or "",
            mail_domain=config["MAIL_DOMAIN"],
            address_ca=config["ADDRESS_CA"],
            address_appeals=config["ADDRESS_APPEALS"],
            address_legal=config["ADDRESS_LEGAL"],
            imap_ca_url=config["IMAP_CA_URL"],
            imap_appeals_url=config["IMAP_APPEALS_URL"],
            outbox_dir=Path(config["OUTBOX_DIR"]),
            blob_dir=Path(config["BLOB_DIR"]),
            request_rate_limit=config["REQUEST_RATE_LIMIT"],
            acks_per_address_per_day=int(config["ACKS_PER_ADDRESS_PER_DAY"]),
            site_name=config["SITE_NAME"],
            audit_key=_audit_key(config),
            mail_port=int(config["MAIL_PORT"]),
            mail_use_tls=_flag(config["MAIL_USE_TLS"]),
            mail_use_ssl=_flag(config["MAIL_USE_SSL"]),
            mail_username=config["MAIL_USERNAME"] or None,
            mail_password=config["MAIL_PASSWORD"] or None,
            mail_timeout=float(config["MAIL_TIMEOUT"]),
            mail_max_attempts=max(1, int(config["MAIL_MAX_ATTEMPTS"])),
            outbox_poll_seconds=float(config["OUTBOX_POLL_SECONDS"]),
            public_url=str(config["PUBLIC_URL"]).rstrip("/"),
            appeal_clock_days=int(config["APPEAL_CLOCK_DAYS"]),
            appeal_confirm_hours=int(config["APPEAL_CONFIRM_HOURS"]),
            staff_session=timedelta(hours=float(config["STAFF_SESSION_HOURS"])),
            staff_idle=timedelta(minutes=float(config["STAFF_IDLE_MINUTES"])),
            trusted_proxies=int(config["TRUSTED_PROXIES"]),
            health_mail_max_age=timedelta(minutes=float(config["HEALTH_MAIL_MAX_AGE_MINUTES"])),
        )


def configure(app: Flask, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Fill ``app.config`` and return the typed settings, also kept on the app."""
    load_dotenv(Path.cwd() / ".env")
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("PORTAL")
    if overrides:
        app.config.update(overrides)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    config = app.config
    config["SQLALCHEMY_DATABASE_URI"] = config.get("SQLALCHEMY_DATABASE_URI") or (
        config["DATABASE_URL"] or f"sqlite:///{instance / 'portal.sqlite3'}"
    )
    # A failed statement's message must not carry its values into the logs: they are mail
    # bodies, addresses and password hashes.
    engine_options = config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    engine_options.setdefault("hide_parameters", True)
    if not str(config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        # A database server restarted (or failed over) has closed every pooled connection:
        # test each one before handing it out, or every worker answers its next request
        # with a 500. SQLite has no server to lose.
        engine_options.setdefault("pool_pre_ping", True)
    config["OUTBOX_DIR"] = config["OUTBOX_DIR"] or str(instance / "outbox")
    config["BLOB_DIR"] = config["BLOB_DIR"] or str(instance / "blobs")
    refusals = production.check(config, secret_key_generated=not config["SECRET_KEY"])
    if refusals:
        raise ConfigurationError("\n".join(refusals))
    config["SECRET_KEY"] = config["SECRET_KEY"] or _instance_secret(instance)
    if config["RATELIMIT_STORAGE_URI"] == ratelimit_store.SCHEME + "://":
        config["RATELIMIT_STORAGE_URI"] = ratelimit_store.storage_uri(
            config["SQLALCHEMY_DATABASE_URI"]
        )
    config.setdefault("MAIL_DEFAULT_SENDER", config["ADDRESS_CA"])
    # CSRF tokens and the session ride on a cookie the browser never sends cross-site.
    config["SESSION_COOKIE_SAMESITE"] = "Strict"
    config["SESSION_COOKIE_HTTPONLY"] = True
    # A form left open over lunch should still submit; the token is bound to the session.
    config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    config["RATELIMIT_HEADERS_ENABLED"] = True
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=float(config["STAFF_SESSION_HOURS"]))

    settings = Settings.from_config(config)
    app.extensions["portal.settings"] = settings
    return settings


def _flag(value: Any) -> bool:
    """A boolean setting, whether it came from the environment as text or from code."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class ConfigurationError(RuntimeError):
    """The configuration cannot run safely; the message names the variable to set."""


def _audit_key(config: Mapping[str, Any]) -> bytes:
    if config["AUDIT_KEY"]:
        return str(config["AUDIT_KEY"]).encode()
    if config["ENV"] == "production":
        raise ConfigurationError(
            "PORTAL_AUDIT_KEY must be set when PORTAL_ENV=production: it keys the audit "
            "trail's hash chain and is kept outside the database"
        )
    secret = str(config["SECRET_KEY"]).encode()
    return hmac.new(secret, b"portal audit chain (development)", hashlib.sha256).digest()


def get_settings() -> Settings:
    settings: Settings = current_app.extensions["portal.settings"]
    return settings


def _instance_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so a laptop install needs no setup.

    Production sets ``PORTAL_SECRET_KEY``; the file is created readable by its owner only.
    """
    path = instance / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
        log.info("generated a secret key in the instance folder")
    return path.read_text().strip()
