"""WeChat's message signatures and "safe mode" AES cipher, with the checks wechatpy skips.

Format (Tencent's sample code): base64(AES-256-CBC(key, iv=key[:16],
PKCS#7-32(random16 + len(msg) as 4 big-endian bytes + msg + AppID))).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16


class CryptoError(Exception):
    """A message that fails decryption, padding, length or AppID checks."""


def signature(*parts: str) -> str:
    """SHA-1 of the sorted, concatenated parts (token, timestamp, nonce[, encrypted])."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_ok(expected: str, *parts: str) -> bool:
    # Bytes: compare_digest raises on str with non-ASCII characters (a forged query has them).
    given = expected.lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(signature(*parts).encode(), given)


class WeChatCipher:
    def __init__(self, encoding_aes_key: str, appid: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError("WECHAT_AES_KEY is not a 43-character EncodingAESKey") from exc
        if len(key) != 32:
            raise ValueError("WECHAT_AES_KEY is not a 43-character EncodingAESKey")
        self._key = key
        self._appid = appid.encode()

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, plaintext: str, random_prefix: bytes | None = None) -> str:
        prefix = random_prefix if random_prefix is not None else secrets.token_bytes(16)
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 bytes")
        body = plaintext.encode()
        raw = prefix + struct.pack(">I", len(body)) + body + self._appid
        pad = BLOCK - len(raw) % BLOCK
        raw += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("not base64") from exc
        if not data or len(data) % 16:
            raise CryptoError("ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        raw = decryptor.update(data) + decryptor.finalize()
        pad = raw[-1]
        if not 1 <= pad <= BLOCK or raw[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad PKCS#7 padding")
        content = raw[16:-pad]
        if len(content) < 4:
            raise CryptoError("too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CryptoError("length field runs past the message")
        message, appid = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(appid, self._appid):
            raise CryptoError("message is for another AppID")
        try:
            return message.decode()
        except UnicodeDecodeError as exc:
            raise CryptoError("message is not UTF-8") from exc
