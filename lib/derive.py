"""Secrets derived from one per-install key (standard library only, so settings can use it too)."""

from __future__ import annotations

import hashlib
import hmac


def derive_secret(key: str, purpose: str, length: int = 32) -> str:
    """A stable secret for ``purpose``, unguessable without ``key`` (HMAC-SHA256, hex)."""
    if not key:
        raise ValueError("No key to derive secrets from.")
    return hmac.new(key.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:length]
