"""The safe-mode cipher against Tencent's own sample vector, and what decryption refuses."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.wechat_crypto import CryptoError, WeChatCipher, signature, signature_ok

# Tencent's sample code (WXBizMsgCrypt) test vector.
TOKEN = "pamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxb11529c136998cb6"
PREFIX = b"aaaabbbbccccdddd"
PLAINTEXT = "我是中文abcd123"
SEALED = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="


def raw_seal(raw: bytes) -> str:
    """AES-CBC with the vector's key over bytes we lay out by hand (no padding added)."""
    key = base64.b64decode(AES_KEY + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(raw) + enc.finalize()).decode()


def layout(message: bytes, appid: bytes = APPID.encode(), length: int | None = None) -> bytes:
    size = len(message) if length is None else length
    return PREFIX + struct.pack(">I", size) + message + appid


def pkcs7(raw: bytes) -> bytes:
    pad = 32 - len(raw) % 32
    return raw + bytes([pad]) * pad


@pytest.fixture
def cipher() -> WeChatCipher:
    return WeChatCipher(AES_KEY, APPID)


def test_encrypts_tencents_sample_vector(cipher: WeChatCipher) -> None:
    assert cipher.encrypt(PLAINTEXT, random_prefix=PREFIX) == SEALED


def test_decrypts_tencents_sample_vector(cipher: WeChatCipher) -> None:
    assert cipher.decrypt(SEALED) == PLAINTEXT


def test_round_trip_with_random_prefix_and_block_sized_message(cipher: WeChatCipher) -> None:
    # 16 + 4 + 22 + 18 = 60 bytes; and a message making the raw exactly 64 (a full pad block)
    for text in ("x" * 22, "y" * 26, "", "签到" * 200):
        sealed = cipher.encrypt(text)
        assert sealed != cipher.encrypt(text)  # a fresh random prefix each time
        assert cipher.decrypt(sealed) == text


def test_full_block_of_padding_is_accepted(cipher: WeChatCipher) -> None:
    raw = layout(b"y" * 26)
    assert len(raw) % 32 == 0
    assert cipher.decrypt(raw_seal(pkcs7(raw))) == "y" * 26


def test_refuses_bad_padding(cipher: WeChatCipher) -> None:
    raw = pkcs7(layout(PLAINTEXT.encode()))
    pad = raw[-1]
    inconsistent = raw[:-pad] + bytes([pad - 1]) * (pad - 1) + bytes([pad])
    with pytest.raises(CryptoError, match="padding"):
        cipher.decrypt(raw_seal(inconsistent))


def test_refuses_padding_byte_zero_or_past_a_block(cipher: WeChatCipher) -> None:
    raw = layout(PLAINTEXT.encode())
    for last in (0, 33):
        body = raw + b"\x00" * (31 - len(raw) % 32) + bytes([last])
        assert len(body) % 32 == 0
        with pytest.raises(CryptoError, match="padding"):
            cipher.decrypt(raw_seal(body))


def test_refuses_wrong_appid(cipher: WeChatCipher) -> None:
    other = WeChatCipher(AES_KEY, "wx0000000000000000")
    with pytest.raises(CryptoError, match="AppID"):
        other.decrypt(SEALED)
    with pytest.raises(CryptoError, match="AppID"):
        cipher.decrypt(raw_seal(pkcs7(layout(b"hello", appid=b"wxb11529c136998cb7"))))


def test_refuses_appid_with_trailing_bytes(cipher: WeChatCipher) -> None:
    sealed = raw_seal(pkcs7(layout(b"hello", appid=APPID.encode() + b"\x01")))
    with pytest.raises(CryptoError, match="AppID"):
        cipher.decrypt(sealed)


def test_refuses_length_field_past_the_end(cipher: WeChatCipher) -> None:
    sealed = raw_seal(pkcs7(layout(b"hello", length=10_000)))
    with pytest.raises(CryptoError, match="length"):
        cipher.decrypt(sealed)


def test_refuses_non_base64(cipher: WeChatCipher) -> None:
    for junk in ("not base64 at all!", SEALED[:-2] + "*=", "jn1L23DB\n" + SEALED):
        with pytest.raises(CryptoError, match="base64"):
            cipher.decrypt(junk)


def test_refuses_partial_blocks_and_empty(cipher: WeChatCipher) -> None:
    for bad in ("", base64.b64encode(b"x" * 20).decode()):
        with pytest.raises(CryptoError):
            cipher.decrypt(bad)


def test_refuses_ciphertext_under_another_key(cipher: WeChatCipher) -> None:
    other = WeChatCipher("B" * 43, APPID)
    with pytest.raises(CryptoError):
        cipher.decrypt(other.encrypt(PLAINTEXT))


def test_rejects_an_aes_key_that_is_not_43_base64_characters() -> None:
    for bad in ("short", AES_KEY + "AAAA", AES_KEY[:-1] + "*"):
        with pytest.raises(ValueError, match="EncodingAESKey"):
            WeChatCipher(bad, APPID)


def test_signature_is_sha1_of_the_sorted_parts() -> None:
    # WXBizMsgCrypt's sample: token, timestamp, nonce and the ciphertext sorted as strings.
    parts = (TOKEN, "1409304348", "xxxxxx", SEALED)
    expected = hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()
    assert signature(*parts) == expected
    assert signature_ok(expected.upper(), *parts)
    flipped = expected[:-1] + ("1" if expected[-1] == "0" else "0")
    assert not signature_ok(flipped, *parts)


def test_signature_check_refuses_non_ascii_without_raising() -> None:
    assert not signature_ok("签名", TOKEN, "1409304348", "xxxxxx")
