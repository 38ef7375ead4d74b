"""The handshake's HMAC-SHA256, computed without ``hmac``, is ``hmac``'s to the bit."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsh.protocol import auth


@given(key=st.sampled_from([0, 1, 63, 64, 65, 128, 200]).flatmap(lambda n: st.binary(min_size=n, max_size=n)), msg=st.binary(max_size=300))
def test_hmac_sha256_is_hmac_s(key: bytes, msg: bytes) -> None:
    assert auth.hmac_sha256(key, msg) == hmac.new(key, msg, "sha256").digest()


@pytest.mark.parametrize("size", [0, 1, 64, 65, 200])
def test_keys_either_side_of_a_block(size: int) -> None:
    # Keys of one block are padded; longer ones are hashed first (RFC 2104).
    key = bytes(range(256))[:size]
    for msg in (b"", b"rsh-client\0a\0b", bytes(1000)):
        assert auth.hmac_sha256(key, msg) == hmac.new(key, msg, "sha256").digest()


def test_macs_are_hex_and_compared_as_hmac_compares_them() -> None:
    token, ns, nc = "t\u00e9", "a" * 64, "b" * 64
    mac = auth.client_mac(token, ns, nc)
    assert mac == hmac.new(token.encode(), b"rsh-client\0" + ns.encode() + b"\0" + nc.encode(), "sha256").hexdigest()
    assert mac != auth.server_mac(token, ns, nc)
    assert auth.macs_equal(mac, mac) and not auth.macs_equal(mac[:-1] + ("1" if mac[-1] == "0" else "0"), mac) and not auth.macs_equal(None, mac)
