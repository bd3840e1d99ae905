"""The server side of NTLM over HTTP ([MS-NLMP]), enough for IIS-style Windows authentication.

The handshake is three messages on one kept-alive connection: the client's NEGOTIATE
(type 1), the server's CHALLENGE (type 2, in a 401's ``WWW-Authenticate: NTLM ...``) and
the client's AUTHENTICATE (type 3). The server checks the NTLMv2 response against the
account's password: ``NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(upper(user) +
domain))`` and ``NTProofStr = HMAC-MD5(NTOWFv2, server challenge + client blob)``.

What is promised: a client that knows the password authenticates (requests-ntlm /
pyspnego, as exchangelib uses them); a wrong password, an NTLMv1 or anonymous response,
or an AUTHENTICATE without a preceding CHALLENGE on the connection does not.

Differences from Windows: the MIC, channel bindings (Extended Protection) and the
session key are not checked; NTLMv1 and LM responses are refused (LmCompatibilityLevel
5); the client blob's timestamp is not checked against replay.
"""

from __future__ import annotations

import hmac
import secrets
import struct
import time
from dataclasses import dataclass

__all__ = [
    "Authenticate",
    "Challenge",
    "NtlmError",
    "build_challenge",
    "md4",
    "parse_authenticate",
    "parse_negotiate",
    "verify_ntlmv2",
]

SIGNATURE = b"NTLMSSP\x00"

NEGOTIATE_UNICODE = 0x00000001
REQUEST_TARGET = 0x00000004
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NEGOTIATE_TARGET_INFO = 0x00800000
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000

_ECHOED = (
    NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56
)
_ALWAYS = (
    NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | TARGET_TYPE_DOMAIN
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_VERSION
)
# Windows Server 2019, NTLM revision 15: what Exchange's IIS reports in the Version field.
_VERSION = struct.pack("<BBHxxxB", 10, 0, 17763, 15)


class NtlmError(ValueError):
    """A message that is not the NTLM message expected at this step."""


@dataclass(frozen=True)
class Challenge:
    server_challenge: bytes
    message: bytes


@dataclass(frozen=True)
class Authenticate:
    user: str
    domain: str
    workstation: str
    nt_response: bytes
    lm_response: bytes
    flags: int


def _check(message: bytes, kind: int) -> None:
    if len(message) < 12 or message[:8] != SIGNATURE:
        raise NtlmError("not an NTLMSSP message")
    (found,) = struct.unpack_from("<I", message, 8)
    if found != kind:
        raise NtlmError(f"expected an NTLM type {kind} message, got type {found}")


def parse_negotiate(message: bytes) -> int:
    """The flags a NEGOTIATE message asks for."""
    _check(message, 1)
    if len(message) < 16:
        raise NtlmError("NEGOTIATE message too short")
    (flags,) = struct.unpack_from("<I", message, 12)
    return int(flags)


def _av_pair(av_id: int, value: bytes) -> bytes:
    return struct.pack("<HH", av_id, len(value)) + value


def _filetime(now: float) -> bytes:
    return struct.pack("<Q", int(now * 10_000_000) + 116_444_736_000_000_000)


def build_challenge(
    client_flags: int, *, netbios_domain: str, netbios_computer: str, dns_domain: str
) -> Challenge:
    """A CHALLENGE answering ``client_flags``, with the target info Windows sends."""
    flags = _ALWAYS | (client_flags & _ECHOED)
    target = netbios_domain.encode("utf-16-le")
    info = b"".join(
        (
            _av_pair(2, netbios_domain.encode("utf-16-le")),
            _av_pair(1, netbios_computer.encode("utf-16-le")),
            _av_pair(4, dns_domain.encode("utf-16-le")),
            _av_pair(3, f"{netbios_computer.lower()}.{dns_domain}".encode("utf-16-le")),
            _av_pair(5, dns_domain.encode("utf-16-le")),
            _av_pair(7, _filetime(time.time())),
            _av_pair(0, b""),
        )
    )
    server_challenge = secrets.token_bytes(8)
    header_length = 56
    message = (
        SIGNATURE
        + struct.pack("<I", 2)
        + struct.pack("<HHI", len(target), len(target), header_length)
        + struct.pack("<I", flags)
        + server_challenge
        + b"\x00" * 8
        + struct.pack("<HHI", len(info), len(info), header_length + len(target))
        + _VERSION
        + target
        + info
    )
    return Challenge(server_challenge=server_challenge, message=message)


def _field(message: bytes, offset: int) -> bytes:
    length, _max, start = struct.unpack_from("<HHI", message, offset)
    if start + length > len(message):
        raise NtlmError("field runs past the end of the message")
    return message[start : start + length]


def parse_authenticate(message: bytes) -> Authenticate:
    _check(message, 3)
    if len(message) < 64:
        raise NtlmError("AUTHENTICATE message too short")
    (flags,) = struct.unpack_from("<I", message, 60)
    unicode = bool(flags & NEGOTIATE_UNICODE)
    encoding = "utf-16-le" if unicode else "cp437"

    def text(offset: int) -> str:
        return _field(message, offset).decode(encoding, errors="replace")

    return Authenticate(
        lm_response=_field(message, 12),
        nt_response=_field(message, 20),
        domain=text(28),
        user=text(36),
        workstation=text(44),
        flags=int(flags),
    )


def verify_ntlmv2(answer: Authenticate, server_challenge: bytes, password: str) -> bool:
    """Does ``answer`` prove knowledge of ``password`` for this challenge (NTLMv2 only)?"""
    if len(answer.nt_response) <= 24 or not answer.user:
        return False
    nt_hash = md4(password.encode("utf-16-le"))
    identity = (answer.user.upper() + answer.domain).encode("utf-16-le")
    response_key = hmac.new(nt_hash, identity, "md5").digest()
    proof, blob = answer.nt_response[:16], answer.nt_response[16:]
    expected = hmac.new(response_key, server_challenge + blob, "md5").digest()
    return hmac.compare_digest(proof, expected)


# -- MD4 (RFC 1320): OpenSSL 3 no longer offers it through hashlib ------------------------------


def _rotl(value: int, bits: int) -> int:
    value &= 0xFFFFFFFF
    return ((value << bits) | (value >> (32 - bits))) & 0xFFFFFFFF


def md4(data: bytes) -> bytes:
    length = len(data) * 8
    data += b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", length)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for chunk in range(0, len(data), 64):
        x = struct.unpack("<16I", data[chunk : chunk + 64])
        aa, bb, cc, dd = a, b, c, d

        def f(x_: int, y: int, z: int) -> int:
            return (x_ & y) | (~x_ & z)

        def g(x_: int, y: int, z: int) -> int:
            return (x_ & y) | (x_ & z) | (y & z)

        def h(x_: int, y: int, z: int) -> int:
            return x_ ^ y ^ z

        for i in (0, 4, 8, 12):
            a = _rotl(a + f(b, c, d) + x[i], 3)
            d = _rotl(d + f(a, b, c) + x[i + 1], 7)
            c = _rotl(c + f(d, a, b) + x[i + 2], 11)
            b = _rotl(b + f(c, d, a) + x[i + 3], 19)
        for i in (0, 1, 2, 3):
            a = _rotl(a + g(b, c, d) + x[i] + 0x5A827999, 3)
            d = _rotl(d + g(a, b, c) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + g(d, a, b) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + g(c, d, a) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):
            a = _rotl(a + h(b, c, d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + h(a, b, c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + h(d, a, b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + h(c, d, a) + x[i + 12] + 0x6ED9EBA1, 15)
        a = (a + aa) & 0xFFFFFFFF
        b = (b + bb) & 0xFFFFFFFF
        c = (c + cc) & 0xFFFFFFFF
        d = (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)
