"""The server's secrets and what is made from them: signed session tokens, salted participant ids, codes.

Both secrets come from environment variables, never from the study config (which is copied into
the study folder and hashed): :data:`SECRET_ENV` signs session tokens and derives completion
codes, :data:`SALT_ENV` salts the hashes of participant ids, so the store never holds a
platform's participant id. Both must stay the same across restarts of a study's server (tokens
and participant hashes made before a restart stay valid), and differ from each other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from typing import Mapping

from oddoneout.errors import InputError

#: Environment variable holding the key that signs session tokens.
SECRET_ENV = "ODDONEOUT_SERVE_SECRET"
#: Environment variable holding the salt of participant-id hashes.
SALT_ENV = "ODDONEOUT_PARTICIPANT_SALT"
#: Fewest characters of each secret.
MIN_SECRET_CHARS = 32
#: What a session id looks like (:func:`new_session_id`).
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{24}")
_MAKE = 'python3 -c "import secrets; print(secrets.token_hex(32))"'


def new_session_id() -> str:
    """A fresh random session id (144 bits, URL-safe)."""
    return secrets.token_urlsafe(18)


def _mac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).digest()


@dataclass(frozen=True, repr=False)
class ServerKeys:
    """The secret and the salt of one server.

    Parameters
    ----------
    secret : bytes
        Signs session tokens and derives completion codes.
    salt : bytes
        Salts participant-id hashes.
    scope : str
        What the tokens are valid for (the study and system served): a token of one served
        system is refused by another's server even with the same secret.
    """

    secret: bytes
    salt: bytes
    scope: str

    @classmethod
    def from_env(cls, scope: str, environ: Mapping[str, str] | None = None) -> "ServerKeys":
        """The keys from :data:`SECRET_ENV` and :data:`SALT_ENV`.

        Raises
        ------
        InputError
            When one is unset, shorter than :data:`MIN_SECRET_CHARS`, or both are the same.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for name in (SECRET_ENV, SALT_ENV):
            value = environ.get(name, "")
            if len(value) < MIN_SECRET_CHARS:
                raise InputError(
                    f"oddoneout serve needs ${name}: a secret of at least {MIN_SECRET_CHARS} characters, kept the "
                    f"same across restarts (make one with {_MAKE})"
                )
            values[name] = value.encode()
        if values[SECRET_ENV] == values[SALT_ENV]:
            raise InputError(f"${SECRET_ENV} and ${SALT_ENV} must differ")
        return cls(values[SECRET_ENV], values[SALT_ENV], scope)

    def token(self, session_id: str) -> str:
        """The signed token of a session: ``<session id>.<HMAC-SHA256, base64url>``."""
        return f"{session_id}.{_b64(_mac(self.secret, 'session', self.scope, session_id))}"

    def session_of(self, token: str) -> str | None:
        """The session id a token was signed for, or ``None`` when it is malformed or its signature wrong."""
        session_id, dot, _ = token.partition(".")
        if not dot or not SESSION_ID.fullmatch(session_id):
            return None
        return session_id if hmac.compare_digest(token.encode(), self.token(session_id).encode()) else None

    def participant(self, platform: str, participant_id: str) -> str:
        """The salted hash (hex) stored for a platform's participant id."""
        return _mac(self.salt, "participant", platform, participant_id).hex()

    def completion_code(self, session_id: str) -> str:
        """A session's own completion code: 10 characters (A-Z, 2-7) derived from the secret."""
        return base64.b32encode(_mac(self.secret, "completion", self.scope, session_id)).decode()[:10]


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
