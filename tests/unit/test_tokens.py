"""Token format and verification: pure logic, no servers."""

import base64
import json
import time

import jwt
import pytest

from saga import InvalidToken, TokenType, decode_token, encode_token, new_claims

KEY = "k" * 32
NOW = int(time.time())


def test_an_access_token_carries_the_claims_and_decodes_back() -> None:
    claims = new_claims(TokenType.ACCESS, 7, 900, NOW)
    token = encode_token(KEY, claims)
    payload = jwt.decode(token, KEY, algorithms=["HS256"])
    assert set(payload) == {"sub", "jti", "typ", "iat", "exp"}
    assert payload["sub"] == "7"  # RFC 7519: the subject is a string
    assert (payload["typ"], payload["exp"] - payload["iat"]) == ("access", 900)
    assert decode_token(KEY, token, TokenType.ACCESS) == claims


def test_a_refresh_token_carries_its_family() -> None:
    claims = new_claims(TokenType.REFRESH, 7, 60, NOW, family="fam-1")
    assert decode_token(KEY, encode_token(KEY, claims), TokenType.REFRESH).fam == "fam-1"


def test_a_session_token_carries_its_family_and_valid_after() -> None:
    claims = new_claims(TokenType.ACCESS, 7, 900, NOW, family="fam-1", valid_after=1_790_000_000_123)
    payload = jwt.decode(encode_token(KEY, claims), KEY, algorithms=["HS256"])
    assert (payload["fam"], payload["vaf"]) == ("fam-1", 1_790_000_000_123)
    assert decode_token(KEY, encode_token(KEY, claims), TokenType.ACCESS) == claims


def test_a_token_from_before_the_valid_after_claim_counts_as_zero() -> None:
    token = jwt.encode({"sub": "7", "jti": "j", "typ": "access", "iat": NOW, "exp": NOW + 60}, KEY, algorithm="HS256")
    assert decode_token(KEY, token, TokenType.ACCESS).vaf == 0


def test_an_operators_token_carries_the_role_and_others_none() -> None:
    claims = new_claims(TokenType.ACCESS, 7, 900, NOW, role="operator")
    assert jwt.decode(encode_token(KEY, claims), KEY, algorithms=["HS256"])["role"] == "operator"
    assert decode_token(KEY, encode_token(KEY, claims), TokenType.ACCESS).role == "operator"
    assert decode_token(KEY, encode_token(KEY, new_claims(TokenType.ACCESS, 7, 900, NOW)), TokenType.ACCESS).role is None


def test_every_token_has_its_own_id() -> None:
    assert new_claims(TokenType.ACCESS, 7, 60, NOW).jti != new_claims(TokenType.ACCESS, 7, 60, NOW).jti


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (encode_token(KEY, new_claims(TokenType.ACCESS, 7, -1, NOW)), TokenType.ACCESS),  # expired
        (encode_token("x" * 32, new_claims(TokenType.ACCESS, 7, 60, NOW)), TokenType.ACCESS),  # another key
        (encode_token(KEY, new_claims(TokenType.REFRESH, 7, 60, NOW, family="f")), TokenType.ACCESS),  # wrong type
        (encode_token(KEY, new_claims(TokenType.ACCESS, 7, 60, NOW)), TokenType.REFRESH),
        (jwt.encode({"sub": "7", "jti": "j", "typ": "refresh", "iat": NOW, "exp": NOW + 60}, KEY), TokenType.REFRESH),  # no family
        (jwt.encode({"sub": "7", "typ": "access", "iat": NOW, "exp": NOW + 60}, KEY), TokenType.ACCESS),  # no jti
        (jwt.encode({"sub": "seven", "jti": "j", "typ": "access", "iat": NOW, "exp": NOW + 60}, KEY), TokenType.ACCESS),
        (jwt.encode({"sub": "7", "jti": "j", "typ": "other", "iat": NOW, "exp": NOW + 60}, KEY), TokenType.ACCESS),
        ("not.a.token", TokenType.ACCESS),
        ("", TokenType.ACCESS),
    ],
)
def test_bad_tokens_are_refused(token: str, expected: TokenType) -> None:
    with pytest.raises(InvalidToken):
        decode_token(KEY, token, expected)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_an_unsigned_token_is_refused() -> None:
    payload = {"sub": "7", "jti": "j", "typ": "access", "iat": NOW, "exp": NOW + 60}
    with pytest.raises(InvalidToken):
        decode_token(KEY, f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}.", TokenType.ACCESS)


def test_a_tampered_token_is_refused() -> None:
    header, _, signature = encode_token(KEY, new_claims(TokenType.ACCESS, 7, 60, NOW)).split(".")
    forged = _b64({"sub": "1", "jti": "j", "typ": "access", "iat": NOW, "exp": NOW + 60})
    with pytest.raises(InvalidToken):
        decode_token(KEY, f"{header}.{forged}.{signature}", TokenType.ACCESS)
