"""Hub tokens at rest, encrypted by cfm.secretbox (Fernet, a key derived
from CFM_TOKEN_KEY or SECRET_KEY).

A token is kept only for the jobs of its registration (runs, re-runs, the
sweeper's re-queues, Prepare); it is read by the worker from the row, never
passed in task arguments, never logged, and goes with the row when the
registration is deleted. Rotating the key makes stored tokens unreadable:
those jobs then fail with `access_denied` and ask for the token again.
"""
from __future__ import annotations

from cfm.secretbox import SecretUnreadable, decrypt, encrypt

#: the label of the shared encryption (cfm.secretbox) for Hub tokens; unchanged
#: since tokens were first stored, so tokens stored before still decrypt
LABEL = "cfm.registry.hub-token"


class TokenUnreadable(SecretUnreadable):
    """The stored token was encrypted with another key."""


def token_encrypt(token: str) -> str:
    return encrypt(token, label=LABEL)


def token_decrypt(encrypted: str) -> str:
    try:
        return decrypt(encrypted, label=LABEL)
    except SecretUnreadable as exc:
        raise TokenUnreadable("the stored Hub token cannot be decrypted with the current key") from exc


TOKEN_UNREADABLE_MESSAGE = ("The stored access token can no longer be read (the server's key changed); give the "
                            "token again and re-run.")


def registration_token(registration) -> str | None:
    """The Hub token stored with a registration, in clear for one job's use;
    None when there is none. Raises TokenUnreadable."""
    if not registration.token_encrypted:
        return None
    return token_decrypt(registration.token_encrypted)
