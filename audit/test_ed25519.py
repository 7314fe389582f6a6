"""Tests for audit/ed25519.py.

Run from the repository root with either of::

    python3 -m unittest discover -s audit -p 'test_*.py'
    python3 audit/test_ed25519.py

The known-answer vectors are TEST 1, 2, 3, 1024 and SHA(abc) of RFC 8032
section 7.1.  When the ``openssl`` command (3.x) is available the vectors are
also checked against it, and fresh keys made by openssl are used to compare
both implementations in both directions; those tests are skipped otherwise.
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ed25519  # noqa: E402  (the path must be set up first)
from ed25519 import public_key_from_seed, sign, verify  # noqa: E402

L = ed25519.L
P = ed25519.P


def h(text):
    """Bytes from hex text that may contain spaces and newlines."""
    return bytes.fromhex("".join(text.split()))


# ---------------------------------------------------------------------------
# RFC 8032 section 7.1 vectors: (name, secret key, public key, message, signature)
# ---------------------------------------------------------------------------

TEST_1024_MESSAGE = h("""
    08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98
    fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8
    79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d
    658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc
    1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe
    ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e
    06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef
    efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7
    aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1
    85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2
    d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24
    554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270
    88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc
    2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07
    07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba
    b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a
    ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e
    c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7
    51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c
    42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8
    ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df
    f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08
    d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649
    de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4
    88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3
    2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e
    6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f
    b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5
    0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1
    369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d
    b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c
    0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0
""")

RFC_VECTORS = [
    (
        "TEST 1",
        h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
        h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        b"",
        h("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
          "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ),
    (
        "TEST 2",
        h("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
        h("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
        h("72"),
        h("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
          "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ),
    (
        "TEST 3",
        h("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
        h("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025"),
        h("af82"),
        h("6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
          "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ),
    (
        "TEST 1024",
        h("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5"),
        h("278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e"),
        TEST_1024_MESSAGE,
        h("0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
          "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"),
    ),
    (
        "TEST SHA(abc)",
        h("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"),
        h("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"),
        # The RFC's message is SHA-512("abc"), 64 bytes.
        h("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
          "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        h("dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
          "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
    ),
]


def flip_bit(data, bit):
    """Copy of ``data`` with bit number ``bit`` (0 = lowest bit of byte 0) flipped."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def le32(n):
    return n.to_bytes(32, "little")


# ---------------------------------------------------------------------------
# Arithmetic sanity
# ---------------------------------------------------------------------------

class CurveArithmeticTests(unittest.TestCase):
    def test_constants(self):
        self.assertEqual(P, 2**255 - 19)
        self.assertEqual(ed25519.SQRT_M1 ** 2 % P, P - 1)
        self.assertEqual(ed25519.D * 121666 % P, (-121665) % P)
        # d is not a square, which makes the addition law complete.
        self.assertEqual(pow(ed25519.D, (P - 1) // 2, P), P - 1)

    def test_base_point(self):
        x, y, z, t = ed25519.BASE
        self.assertEqual(z, 1)
        self.assertEqual(
            x, 15112221349535400772501151409588531511454012693041857206046113283949847762202)
        self.assertEqual(
            y, 46316835694926478169428394003475163141307993866256225615783033603165251855960)
        self.assertEqual((-x * x + y * y) % P, (1 + ed25519.D * x * x * y * y) % P)
        self.assertEqual(t, x * y % P)
        self.assertEqual(ed25519._encode(ed25519.BASE).hex(), "58" + "66" * 31)

    def test_base_point_order(self):
        identity = ed25519.IDENTITY
        self.assertTrue(ed25519._same_point(ed25519._mul_base(L), identity))
        self.assertTrue(ed25519._same_point(ed25519._mul(L, ed25519.BASE), identity))
        self.assertFalse(ed25519._same_point(ed25519._mul_base(L - 1), identity))

    def test_add_double_mul_agree(self):
        rng = random.Random(1)
        for _ in range(20):
            a = rng.randrange(1, L)
            b = rng.randrange(1, L)
            pa = ed25519._mul_base(a)
            pb = ed25519._mul(b, ed25519.BASE)
            self.assertTrue(ed25519._same_point(ed25519._add(pa, pa), ed25519._double(pa)))
            self.assertTrue(ed25519._same_point(
                ed25519._add(pa, pb), ed25519._mul_base((a + b) % L)))
            self.assertTrue(ed25519._same_point(
                ed25519._mul(b, pa), ed25519._mul_base(a * b % L)))
            self.assertTrue(ed25519._same_point(
                ed25519._add(pa, ed25519._negate(pa)), ed25519.IDENTITY))
            # Encoding and strict decoding round-trip.
            self.assertTrue(ed25519._same_point(
                ed25519._decode(ed25519._encode(pa)), pa))


# ---------------------------------------------------------------------------
# RFC 8032 known answers
# ---------------------------------------------------------------------------

class RfcVectorTests(unittest.TestCase):
    def test_vector_lengths(self):
        self.assertEqual(len(TEST_1024_MESSAGE), 1023)
        self.assertEqual(RFC_VECTORS[4][3], hashlib.sha512(b"abc").digest())
        for name, seed, public, _, signature in RFC_VECTORS:
            self.assertEqual((len(seed), len(public), len(signature)), (32, 32, 64), name)

    def test_public_key_from_seed(self):
        for name, seed, public, _, _ in RFC_VECTORS:
            with self.subTest(name):
                self.assertEqual(public_key_from_seed(seed), public)

    def test_sign(self):
        for name, seed, _, message, signature in RFC_VECTORS:
            with self.subTest(name):
                self.assertEqual(sign(seed, message), signature)

    def test_verify(self):
        for name, _, public, message, signature in RFC_VECTORS:
            with self.subTest(name):
                self.assertIs(verify(public, message, signature), True)

    def test_bytes_like_arguments(self):
        _, seed, public, message, signature = RFC_VECTORS[2]
        self.assertTrue(verify(bytearray(public), memoryview(message), bytearray(signature)))
        self.assertEqual(sign(bytearray(seed), memoryview(message)), signature)
        self.assertEqual(public_key_from_seed(memoryview(seed)), public)

    def test_sign_rejects_bad_seed(self):
        with self.assertRaises(ValueError):
            sign(bytes(31), b"m")
        with self.assertRaises(ValueError):
            public_key_from_seed(bytes(33))
        with self.assertRaises(TypeError):
            public_key_from_seed(32)  # bytes(32) would be 32 zero bytes: refused
        with self.assertRaises(TypeError):
            sign(bytes(32), "text")


# ---------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------

class RejectionTests(unittest.TestCase):
    def test_flipped_message_bit(self):
        for name, _, public, message, signature in RFC_VECTORS:
            with self.subTest(name):
                if message:
                    for bit in (0, 7, len(message) * 8 - 1):
                        self.assertFalse(verify(public, flip_bit(message, bit), signature))
                    self.assertFalse(verify(public, message[:-1], signature))
                self.assertFalse(verify(public, message + b"\x00", signature))

    def test_every_flipped_bit_of_r_s_and_key(self):
        _, _, public, message, signature = RFC_VECTORS[1]
        for bit in range(256):
            self.assertFalse(verify(public, message, flip_bit(signature, bit)), "R bit %d" % bit)
            self.assertFalse(verify(public, message, flip_bit(signature, 256 + bit)),
                             "S bit %d" % bit)
            self.assertFalse(verify(flip_bit(public, bit), message, signature), "key bit %d" % bit)

    def test_other_key(self):
        _, _, public, message, signature = RFC_VECTORS[1]
        other_public = RFC_VECTORS[2][2]
        self.assertFalse(verify(other_public, message, signature))

    def test_non_canonical_s(self):
        # S + L satisfies the verification equation (it is the same scalar
        # modulo L) but is not the canonical encoding: it must be refused.
        for name, _, public, message, signature in RFC_VECTORS:
            with self.subTest(name):
                s = int.from_bytes(signature[32:], "little")
                self.assertLess(s + L, 2**256)
                self.assertFalse(verify(public, message, signature[:32] + le32(s + L)))
                # Sanity: the same S reduced is accepted (the test above
                # fails because of the range check only).
                self.assertTrue(verify(public, message, signature[:32] + le32((s + L) % L)))
        _, _, public, message, signature = RFC_VECTORS[0]
        for s in (L, L + 1, 2**253, 2**256 - 1):
            self.assertFalse(verify(public, message, signature[:32] + le32(s)))

    def test_wrong_lengths(self):
        _, _, public, message, signature = RFC_VECTORS[1]
        for bad_key in (b"", public[:31], public + b"\x00", public * 2):
            self.assertFalse(verify(bad_key, message, signature))
        for bad_sig in (b"", signature[:63], signature + b"\x00", signature[:32],
                        signature * 2):
            self.assertFalse(verify(public, message, bad_sig))

    def test_key_that_is_not_a_point(self):
        # y = 2: (y^2 - 1) / (d y^2 + 1) is not a square, so no x exists.
        self.assertIsNone(ed25519._recover_x(2, 0))
        self.assertIsNone(ed25519._recover_x(2, 1))
        _, _, _, message, signature = RFC_VECTORS[1]
        self.assertIsNone(ed25519._decode(le32(2)))
        self.assertFalse(verify(le32(2), message, signature))
        self.assertFalse(verify(le32(2 | 1 << 255), message, signature))

    def test_non_canonical_key_encodings(self):
        _, _, _, message, _ = RFC_VECTORS[1]
        # A signature that is valid for the neutral element (0, 1) as public
        # key: [1]B - [k]identity = B, whatever k is.
        forged = ed25519._encode(ed25519.BASE) + le32(1)
        # y = p + 1 is a non-canonical encoding of y = 1 (the neutral
        # element); y = p + 3 of y = 3, a real point; y = 2^255 - 1 of y = 18.
        for y in (P, P + 1, P + 3, 2**255 - 1):
            self.assertIsNone(ed25519._decode(le32(y)), y)
            self.assertIsNone(ed25519._decode(le32(y | 1 << 255)), y)
            self.assertFalse(verify(le32(y), message, forged))
        # x = 0 with the sign bit set: y = 1 and y = p - 1 are the two points
        # with x = 0.
        for y in (1, P - 1):
            self.assertIsNotNone(ed25519._decode(le32(y)))
            self.assertIsNone(ed25519._decode(le32(y | 1 << 255)))
            self.assertFalse(verify(le32(y | 1 << 255), message, forged))

    def test_all_zero_key(self):
        # 32 zero bytes decode to (sqrt(-1), 0), a point of order 4.  No
        # genuine signature verifies under it.
        point = ed25519._decode(bytes(32))
        self.assertIsNotNone(point)
        self.assertTrue(ed25519._same_point(ed25519._mul(4, point), ed25519.IDENTITY))
        for name, _, _, message, signature in RFC_VECTORS:
            self.assertFalse(verify(bytes(32), message, signature), name)
        self.assertFalse(verify(bytes(32), b"", bytes(64)))

    def test_small_order_key_is_not_rejected(self):
        """Documents a limitation shared with ring: small-order keys.

        Verification does not refuse public keys of small order (neither
        does ring).  Under such a key signatures can be forged without any
        secret, so a verifier given a key to trust must refuse it first with
        ``check_public_key`` (see StrictPublicKeyTests).  Here: the canonical
        encoding of the neutral element accepts the forged signature that
        the non-canonical encodings above refuse.
        """
        forged = ed25519._encode(ed25519.BASE) + le32(1)
        self.assertTrue(verify(le32(1), b"any message", forged))
        # With the all-zero key A (order 4) and the all-zero signature
        # (R = encoding of A, S = 0) the check is -[k]A == A, which holds
        # exactly when k = 3 (mod 4): one message in four is "signed".
        zero = bytes(32)
        accepted = 0
        for i in range(16):
            message = b"message %d" % i
            k = int.from_bytes(hashlib.sha512(zero + zero + message).digest(), "little") % L
            self.assertEqual(verify(zero, message, bytes(64)), k % 4 == 3, message)
            accepted += k % 4 == 3
        self.assertGreater(accepted, 0)

    def test_garbage_never_raises(self):
        rng = random.Random(8032)
        _, _, public, message, signature = RFC_VECTORS[1]
        for _ in range(300):
            key = rng.randbytes(rng.choice((0, 1, 31, 32, 32, 32, 33, 64)))
            sig = rng.randbytes(rng.choice((0, 32, 63, 64, 64, 64, 65)))
            msg = rng.randbytes(rng.randrange(0, 100))
            self.assertFalse(verify(key, msg, sig))
        # A random 32-byte S is usually >= L; force some canonical ones too.
        for _ in range(100):
            sig = rng.randbytes(32) + le32(rng.randrange(L))
            self.assertFalse(verify(rng.randbytes(32), b"m", sig))
            self.assertFalse(verify(public, message, sig))
        for bad in (None, "text", 32, 64, 1.5, [0] * 32, object()):
            self.assertIs(verify(bad, message, signature), False)
            self.assertIs(verify(public, bad, signature), False)
            self.assertIs(verify(public, message, bad), False)


# ---------------------------------------------------------------------------
# check_public_key: the keys a verifier must refuse before trusting them
# ---------------------------------------------------------------------------

#: A point of order 8 (its encoding appears in every list of small-order
#: Ed25519 points, e.g. libsodium's blocklist).
ORDER_8 = h("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")


def torsion_points():
    """The eight points of order dividing 8, as points."""
    t = ed25519._decode(ORDER_8)
    points = [ed25519.IDENTITY]
    for _ in range(7):
        points.append(ed25519._add(points[-1], t))
    return points


class StrictPublicKeyTests(unittest.TestCase):
    def refused(self, key, reason):
        with self.assertRaises(ValueError) as caught:
            ed25519.check_public_key(key)
        self.assertIn(reason, str(caught.exception))

    def test_genuine_keys_pass(self):
        for name, seed, public, _, _ in RFC_VECTORS:
            self.assertIsNone(ed25519.check_public_key(public), name)
        rng = random.Random(6962)
        for _ in range(5):
            key = public_key_from_seed(rng.randbytes(32))
            self.assertIsNone(ed25519.check_public_key(bytearray(key)))

    def test_the_eight_small_order_points_are_refused(self):
        t = ed25519._decode(ORDER_8)
        self.assertTrue(ed25519._same_point(ed25519._mul(8, t), ed25519.IDENTITY))
        self.assertFalse(ed25519._same_point(ed25519._mul(4, t), ed25519.IDENTITY))
        encodings = {ed25519._encode(p) for p in torsion_points()}
        self.assertEqual(len(encodings), 8)
        # The neutral element, the point of order 2 (y = -1) and 32 zero
        # bytes (order 4) are among them.
        self.assertTrue({le32(1), le32(P - 1), bytes(32)} <= encodings)
        for key in encodings:
            self.refused(key, "small-order point")
        # ...and the signature forged in test_small_order_key_is_not_rejected
        # is thereby never looked at.
        forged = ed25519._encode(ed25519.BASE) + le32(1)
        self.assertTrue(verify(le32(1), b"any message", forged))

    def test_keys_with_a_small_order_component_are_refused(self):
        _, _, public, _, _ = RFC_VECTORS[0]
        a = ed25519._decode(public)
        for t in torsion_points()[1:]:
            mixed = ed25519._encode(ed25519._add(a, t))
            self.refused(mixed, "prime-order subgroup")

    def test_non_canonical_encodings_are_refused(self):
        for y in (P, P + 1, P + 3, 2**255 - 1):
            self.refused(le32(y), "y >= p")
        for y in (1, P - 1):
            self.refused(le32(y | 1 << 255), "x = 0 with the sign bit set")
        self.refused(le32(2), "not a point")

    def test_wrong_lengths_and_types(self):
        for key in (b"", bytes(31), bytes(33)):
            self.refused(key, "32 bytes")
        for bad in (None, "00" * 32, 32):
            with self.assertRaises(TypeError):
                ed25519.check_public_key(bad)

    def test_signatures_with_s_at_least_l_are_refused(self):
        # S and S + L give the same verification equation; only S < L may
        # pass, or one signature would have several valid encodings.
        _, _, public, message, signature = RFC_VECTORS[1]
        s = int.from_bytes(signature[32:], "little")
        self.assertTrue(verify(public, message, signature))
        self.assertFalse(verify(public, message, signature[:32] + le32(s + L)))


# ---------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------

class SpeedTests(unittest.TestCase):
    def test_thousand_verifications(self):
        seed = hashlib.sha256(b"beffroi speed test").digest()
        public = public_key_from_seed(seed)
        items = []
        for i in range(1000):
            message = b"checkpoint %d" % i
            items.append((message, sign(seed, message)))
        start = time.perf_counter()
        for message, signature in items:
            self.assertTrue(verify(public, message, signature))
        elapsed = time.perf_counter() - start
        self.assertLess(elapsed, 60.0)
        if os.environ.get("ED25519_TIMING"):
            print("\n1000 verifications: %.2f s" % elapsed, file=sys.stderr)


# ---------------------------------------------------------------------------
# Cross-checks with openssl
# ---------------------------------------------------------------------------

OPENSSL = shutil.which("openssl")

# DER (PKCS #8 and SubjectPublicKeyInfo, RFC 8410) headers for Ed25519 keys.
_PKCS8_PREFIX = h("302e020100300506032b657004220420")
_SPKI_PREFIX = h("302a300506032b6570032100")


@unittest.skipUnless(OPENSSL, "openssl command not found")
class OpenSslCrossCheckTests(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name
        self._count = 0

    def tearDown(self):
        self._tmp.cleanup()

    def _path(self, content=None):
        self._count += 1
        path = os.path.join(self.dir, "f%d" % self._count)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
        return path

    def _run(self, *args):
        return subprocess.run([OPENSSL, *args], capture_output=True, check=False)

    def _new_seed(self):
        """A fresh private key made by openssl, returned as its raw seed."""
        path = self._path()
        result = self._run("genpkey", "-algorithm", "ed25519", "-outform", "DER", "-out", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(path, "rb") as f:
            der = f.read()
        self.assertTrue(der.startswith(_PKCS8_PREFIX))
        self.assertEqual(len(der), len(_PKCS8_PREFIX) + 32)
        return der[len(_PKCS8_PREFIX):]

    def _openssl_public(self, seed):
        out = self._path()
        result = self._run("pkey", "-inform", "DER", "-in", self._path(_PKCS8_PREFIX + seed),
                           "-pubout", "-outform", "DER", "-out", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(out, "rb") as f:
            der = f.read()
        self.assertTrue(der.startswith(_SPKI_PREFIX))
        return der[len(_SPKI_PREFIX):]

    def _openssl_sign(self, seed, message):
        # openssl 3.0 pkeyutl cannot sign an empty message with -rawin.
        out = self._path()
        result = self._run("pkeyutl", "-sign", "-rawin", "-keyform", "DER",
                           "-inkey", self._path(_PKCS8_PREFIX + seed),
                           "-in", self._path(message), "-out", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(out, "rb") as f:
            return f.read()

    def _openssl_verify(self, public, message, signature):
        result = self._run("pkeyutl", "-verify", "-rawin", "-pubin", "-keyform", "DER",
                           "-inkey", self._path(_SPKI_PREFIX + public),
                           "-in", self._path(message), "-sigfile", self._path(signature))
        ok = result.returncode == 0 and b"Signature Verified Successfully" in result.stdout
        return ok

    def test_rfc_vectors_with_openssl(self):
        """The vectors typed in above agree with openssl (except the empty TEST 1)."""
        for name, seed, public, message, signature in RFC_VECTORS:
            if not message:
                continue
            with self.subTest(name):
                self.assertEqual(self._openssl_public(seed), public)
                self.assertEqual(self._openssl_sign(seed, message), signature)
                self.assertTrue(self._openssl_verify(public, message, signature))

    def test_fresh_keys_both_ways(self):
        rng = random.Random(25519)
        for length in (1, 2, 33, 64, 200, 1023):
            with self.subTest(length=length):
                seed = self._new_seed()
                message = rng.randbytes(length)
                public = public_key_from_seed(seed)
                self.assertEqual(self._openssl_public(seed), public)

                theirs = self._openssl_sign(seed, message)
                ours = sign(seed, message)
                self.assertEqual(ours, theirs)  # Ed25519 signing is deterministic
                self.assertTrue(verify(public, message, theirs))
                self.assertTrue(self._openssl_verify(public, message, ours))

                tampered = flip_bit(message, 3)
                self.assertFalse(verify(public, tampered, theirs))
                self.assertFalse(self._openssl_verify(public, tampered, ours))

                s = int.from_bytes(ours[32:], "little")
                non_canonical = ours[:32] + le32(s + L)
                self.assertFalse(verify(public, message, non_canonical))
                self.assertFalse(self._openssl_verify(public, message, non_canonical))


if __name__ == "__main__":
    unittest.main()
