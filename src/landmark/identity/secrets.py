"""Secret formats and their storage: typed, checksummed tokens; keyed hashes; argon2id passwords.

A token looks like `lmk_pat_<key id: 12><secret: 32><crc32: 6>` (base62). The prefix names its
type so that scanners can find leaks, the checksum lets them drop look-alikes offline, and the key
id is the public part used to find the stored row. Only HMAC-SHA256(pepper, token) is stored.
"""

import hashlib
import hmac
import secrets
import string
import zlib
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALPHABET = string.digits + string.ascii_letters
KEY_ID_LEN, SECRET_LEN, CHECK_LEN = 12, 32, 6
PREFIXES = {"personal": "pat", "technical": "tut", "upsolver": "ups", "api_key": "cs"}
KINDS = {v: k for k, v in PREFIXES.items()}
CLIENT_ID_PREFIX = "lmk_ci_"

# OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode()), CHECK_LEN)


@dataclass(frozen=True)
class ParsedToken:
    kind: str
    key_id: str


def new_key_id() -> str:
    return _random(KEY_ID_LEN)


def new_token(kind: str, key_id: str) -> str:
    body = f"lmk_{PREFIXES[kind]}_{key_id}{_random(SECRET_LEN)}"
    return body + _checksum(body)


def parse_token(token: str) -> ParsedToken | None:
    """The kind and key id of a well-formed token with a valid checksum, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "lmk" or parts[1] not in KINDS:
        return None
    rest = parts[2]
    if len(rest) != KEY_ID_LEN + SECRET_LEN + CHECK_LEN or not all(c in ALPHABET for c in rest):
        return None
    if not hmac.compare_digest(_checksum(token[:-CHECK_LEN]), token[-CHECK_LEN:]):
        return None
    return ParsedToken(KINDS[parts[1]], rest[:KEY_ID_LEN])


def client_id_for(key_id: str) -> str:
    return CLIENT_ID_PREFIX + key_id


def key_id_from_client_id(client_id: str) -> str | None:
    key_id = client_id.removeprefix(CLIENT_ID_PREFIX)
    if client_id.startswith(CLIENT_ID_PREFIX) and len(key_id) == KEY_ID_LEN:
        return key_id
    return None


def keyed_hash(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if stored is None:
        _hasher.hash(password)  # spend the same time, so timing does not tell who has no password
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
