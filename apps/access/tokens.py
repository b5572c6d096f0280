"""Secrets for devices: generated with `secrets`, stored only as SHA-256 hashes."""

import hashlib
import secrets


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
