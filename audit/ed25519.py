"""Ed25519 signatures (RFC 8032, section 5.1) in pure Python.

This module lets the Beffroi audit verifier check checkpoint signatures with
nothing but the Python 3.11 standard library (``hashlib`` for SHA-512).  It
was written from the mathematics of RFC 8032; it follows the RFC's
definitions but not any particular existing implementation.

Public functions
----------------
``verify(public_key, message, signature) -> bool``
    Strict verification.  Never raises: anything malformed gives ``False``.
``public_key_from_seed(seed) -> bytes``
    The 32-byte public key belonging to a 32-byte private key (the "seed").
``sign(seed, message) -> bytes``
    A 64-byte signature.  Signing exists for the tests and the project's test
    fixtures; the auditor only ever needs ``verify``.
``check_public_key(public_key)``
    Raises ``ValueError`` naming the problem unless the key is a canonical
    encoding of a point of the prime-order subgroup.  ``verify`` accepts
    small-order keys, as ring does; a verifier that is given a key to trust
    (``verify.py``) calls this first and refuses such keys.

Not constant-time
-----------------
Nothing here tries to run in constant time: Python integers, ``pow`` and the
branches on scalar bits all leak timing.  That is acceptable for the purpose
of this module, which verifies *public* data (public keys, signed checkpoints)
offline.  Do not use ``sign`` with a secret key that matters on a machine
where someone else can measure its timing.

Verification rules (what is accepted)
-------------------------------------
* The public key must be exactly 32 bytes and the signature exactly 64 bytes.
* S (the last 32 bytes of the signature, little-endian) must be < L, the
  order of the base point (RFC 8032 section 5.1.7, step 1).
* The public key A must decode as described in section 5.1.3: the y
  coordinate must be canonical (< p), x must exist, and the encoding with
  x = 0 and sign bit 1 is refused.
* The equation checked is the *cofactorless* one::

      [S]B == R + [k]A        with k = SHA-512(R || A || M) mod L

  evaluated by computing the point ``[S]B - [k]A``, encoding it, and
  comparing the 32 resulting bytes with the R half of the signature.
  Comparing encodings gives the same answer as decoding R and comparing
  points (the encoding of a point is unique and always canonical, so an R
  that is non-canonical or not a point can never match), without needing to
  decode R at all.

  RFC 8032 section 5.1.7 allows either this check or the cofactored one
  (``[8][S]B == [8]R + [8][k]A``); they only disagree on signatures built
  with small-order components, which honest signers never produce.  We use
  the cofactorless check because that is what *ring* (the Rust library
  Beffroi signs and verifies with) does, so that the Rust side and this
  independent verifier accept exactly the same signatures.

  One known difference with *ring* remains, deliberately: *ring* decodes the
  public key leniently (it reduces a y coordinate >= p and accepts x = 0 with
  the sign bit set), whereas this module refuses those encodings as the RFC
  says.  No key produced by key generation has such an encoding, so the two
  agree on every genuine key.

Keys of small order
-------------------
Under a public key of small order (1, 2, 4 or 8: the neutral element and
seven other points), anyone can make signatures that ``verify`` accepts,
without any secret (see the tests).  RFC 8032 does not forbid such keys and
neither ``verify`` nor ring refuses them.  ``check_public_key`` does, and also
refuses a key with a small-order component ([L]A is not the neutral element):
a key made by key generation is [a]B, so [L]A is always neutral, and a key
that is not cannot have come from key generation.
"""

import hashlib

__all__ = ["verify", "public_key_from_seed", "sign", "check_public_key"]

# ---------------------------------------------------------------------------
# Curve constants (RFC 8032 section 5.1)
# ---------------------------------------------------------------------------

#: The field prime p = 2^255 - 19.
P = 2**255 - 19

#: The order of the base point (a prime): L = 2^252 + 27742317777372353535851937790883648493.
L = 2**252 + 27742317777372353535851937790883648493

#: The curve constant d = -121665 / 121666 (mod p) of -x^2 + y^2 = 1 + d x^2 y^2.
D = (-121665 * pow(121666, P - 2, P)) % P

#: 2*d, used by the point addition formula.
D2 = (2 * D) % P

#: A square root of -1 modulo p: 2^((p-1)/4).
SQRT_M1 = pow(2, (P - 1) // 4, P)

_KEY_LEN = 32
_SIG_LEN = 64


# ---------------------------------------------------------------------------
# Field helpers
# ---------------------------------------------------------------------------

def _inv(z):
    """Inverse of a nonzero field element, by Fermat: z^(p-2) mod p."""
    return pow(z, P - 2, P)


def _recover_x(y, sign):
    """Return the x coordinate for ``y`` whose low bit equals ``sign``.

    Follows RFC 8032 section 5.1.3, steps 2-4.  Returns ``None`` when no such
    x exists (y is not on the curve) or when x would have to be 0 while the
    sign bit asks for an odd x.  ``y`` must already be reduced (< p).
    """
    # x^2 = u / v with u = y^2 - 1 and v = d*y^2 + 1.  v is never 0 because
    # d is not a square modulo p.
    y2 = y * y % P
    u = (y2 - 1) % P
    v = (D * y2 + 1) % P
    # Candidate root: (u/v)^((p+3)/8) computed without an inversion as
    # u * v^3 * (u * v^7)^((p-5)/8).
    v3 = v * v % P * v % P
    v7 = v3 * v3 % P * v % P
    x = u * v3 % P * pow(u * v7 % P, (P - 5) // 8, P) % P
    check = v * x % P * x % P
    if check == u:
        pass
    elif check == (-u) % P:
        x = x * SQRT_M1 % P
    else:
        return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = P - x
    return x


# ---------------------------------------------------------------------------
# Points in extended twisted Edwards coordinates
#
# A point is a tuple (X, Y, Z, T) with Z != 0 representing the affine point
# x = X/Z, y = Y/Z, and with T = X*Y/Z (so x*y = T/Z).  The formulas are the
# ones of RFC 8032 section 5.1.4 for a = -1 (Hisil, Wong, Carter and Dawson,
# "Twisted Edwards curves revisited", 2008).  They are complete on this
# curve: they work for any two points, including equal points and the
# neutral element, so no special cases are needed.
# ---------------------------------------------------------------------------

#: The neutral element (0, 1).
IDENTITY = (0, 1, 1, 0)


def _add(p1, p2):
    """Sum of two points."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 % P * t2 % P
    dd = z1 * 2 * z2 % P
    e = b - a
    f = dd - c
    g = dd + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p1):
    """Twice a point (dedicated doubling formula, cheaper than _add)."""
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    s = x1 + y1
    e = (h - s * s) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _negate(p1):
    """The opposite point: (x, y) -> (-x, y)."""
    x1, y1, z1, t1 = p1
    return ((-x1) % P, y1, z1, (-t1) % P)


def _from_affine(x, y):
    return (x, y, 1, x * y % P)


def _encode(p1):
    """Encode a point as 32 bytes (RFC 8032 section 5.1.2).

    The y coordinate is written little-endian and the low bit of x goes into
    the most significant bit of the last byte.
    """
    x1, y1, z1, _ = p1
    zi = _inv(z1)
    x = x1 * zi % P
    y = y1 * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(data):
    """Decode 32 bytes into a point, strictly (RFC 8032 section 5.1.3).

    Returns ``None`` when the y coordinate is not canonical (>= p), when no
    x exists for it, or when x = 0 is encoded with the sign bit set.
    """
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return _from_affine(x, y)


def _same_point(p1, p2):
    """Whether two projective representations denote the same point."""
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


# ---------------------------------------------------------------------------
# The base point B and scalar multiplication
# ---------------------------------------------------------------------------

#: y coordinate of the base point: 4/5 mod p.
_BASE_Y = 4 * pow(5, P - 2, P) % P

#: The base point B = (x, 4/5) with x "positive" (even).
BASE = _from_affine(_recover_x(_BASE_Y, 0), _BASE_Y)

# [2^i]B for i = 0..255, built on first use.  With it, [s]B costs one
# addition per set bit of s and no doubling.
_base_powers = None


def _base_table():
    global _base_powers
    if _base_powers is None:
        table = []
        q = BASE
        for _ in range(256):
            table.append(q)
            q = _double(q)
        _base_powers = table
    return _base_powers


def _mul_base(s):
    """[s]B for 0 <= s < 2^256, using the table of powers of two."""
    table = _base_table()
    acc = IDENTITY
    i = 0
    while s:
        if s & 1:
            acc = _add(acc, table[i])
        s >>= 1
        i += 1
    return acc


def _mul(s, point):
    """[s]point for 0 <= s, with a fixed window of 4 bits.

    Precompute 0..15 times the point, then walk the scalar from its most
    significant nibble: four doublings and at most one addition per nibble.
    """
    multiples = [IDENTITY, point]
    for _ in range(14):
        multiples.append(_add(multiples[-1], point))
    acc = IDENTITY
    for shift in range(((s.bit_length() + 3) // 4) * 4 - 4, -1, -4):
        acc = _double(_double(_double(_double(acc))))
        nibble = (s >> shift) & 15
        if nibble:
            acc = _add(acc, multiples[nibble])
    return acc


# ---------------------------------------------------------------------------
# Hashing and keys
# ---------------------------------------------------------------------------

def _sha512_int(*parts):
    """SHA-512 of the concatenated parts, read as a little-endian integer."""
    h = hashlib.sha512()
    for part in parts:
        h.update(part)
    return int.from_bytes(h.digest(), "little")


def _expand_seed(seed):
    """Split SHA-512(seed) into the clamped secret scalar and the nonce prefix.

    RFC 8032 section 5.1.5: the low 32 bytes give the scalar after clearing
    the three lowest bits, clearing bit 255 and setting bit 254; the high 32
    bytes are the prefix used to derive per-message nonces.
    """
    seed = _as_bytes(seed)
    if seed is None:
        raise TypeError("seed must be a bytes-like object")
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes, got %d" % len(seed))
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return scalar, digest[32:]


def _as_bytes(value):
    """Return ``value`` as bytes if it is bytes-like, else ``None``.

    ``bytes(int)`` would silently build a zero-filled buffer, so only real
    byte containers are accepted.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        try:
            return bytes(value)
        except (TypeError, ValueError):
            return None
    return None


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def public_key_from_seed(seed: bytes) -> bytes:
    """Return the 32-byte Ed25519 public key for a 32-byte private key seed.

    Raises ``ValueError`` if the seed is not 32 bytes long and ``TypeError``
    if it is not bytes-like.
    """
    scalar, _ = _expand_seed(seed)
    return _encode(_mul_base(scalar))


def sign(seed: bytes, message: bytes) -> bytes:
    """Sign ``message`` with the 32-byte private key ``seed`` (RFC 8032 5.1.6).

    Returns the 64-byte signature R || S.  Signing is deterministic: the same
    seed and message always give the same signature.  Not constant-time (see
    the module documentation).
    """
    message = _as_bytes(message)
    if message is None:
        raise TypeError("message must be a bytes-like object")
    scalar, prefix = _expand_seed(seed)
    public = _encode(_mul_base(scalar))
    nonce = _sha512_int(prefix, message) % L
    r_bytes = _encode(_mul_base(nonce))
    k = _sha512_int(r_bytes, public, message) % L
    s = (nonce + k * scalar) % L
    return r_bytes + s.to_bytes(32, "little")


def check_public_key(public_key: bytes) -> None:
    """Refuse a public key that an honest key generation cannot have made.

    Raises ``ValueError`` with the reason when the key is not 32 bytes, when
    its encoding is not canonical (y >= p, or x = 0 with the sign bit set),
    when it is not a point of the curve, when it is of small order (order 1,
    2, 4 or 8: signatures can then be forged without the secret key), or when
    it has a small-order component ([L]A is not the neutral element).  Raises
    ``TypeError`` if the key is not bytes-like.  Returns ``None`` for a good
    key.
    """
    data = _as_bytes(public_key)
    if data is None:
        raise TypeError("public key must be a bytes-like object")
    if len(data) != _KEY_LEN:
        raise ValueError("a public key is 32 bytes, not %d" % len(data))
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= P:
        raise ValueError("non-canonical encoding (y >= p)")
    x = _recover_x(y, sign)
    if x is None:
        if sign == 1 and _recover_x(y, 0) == 0:
            raise ValueError("non-canonical encoding (x = 0 with the sign bit set)")
        raise ValueError("not a point of the curve")
    point = _from_affine(x, y)
    if _same_point(_mul(8, point), IDENTITY):
        raise ValueError(
            "small-order point (anyone can forge signatures under it)")
    if not _same_point(_mul(L, point), IDENTITY):
        raise ValueError(
            "not in the prime-order subgroup (it has a small-order component)")


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check an Ed25519 signature; return ``True`` only if it is valid.

    Strict rules (see the module documentation for the reasons):

    * ``public_key`` is 32 bytes and decodes to a curve point with a
      canonical encoding;
    * ``signature`` is 64 bytes, R || S, with S < L;
    * the cofactorless equation ``[S]B == R + [k]A`` holds, checked by
      comparing the encoding of ``[S]B - [k]A`` with the bytes of R, where
      ``k = SHA-512(R || public_key || message) mod L``.

    Never raises: arguments of the wrong type or length, and any other
    malformed input, give ``False``.
    """
    try:
        return _verify(public_key, message, signature)
    except Exception:  # defensive: verification must never raise
        return False


def _verify(public_key, message, signature):
    public_key = _as_bytes(public_key)
    message = _as_bytes(message)
    signature = _as_bytes(signature)
    if public_key is None or message is None or signature is None:
        return False
    if len(public_key) != _KEY_LEN or len(signature) != _SIG_LEN:
        return False
    r_bytes = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    a_point = _decode(public_key)
    if a_point is None:
        return False
    k = _sha512_int(r_bytes, public_key, message) % L
    candidate = _add(_mul_base(s), _negate(_mul(k, a_point)))
    return _encode(candidate) == r_bytes
