"""Tests for audit/verify.py.

Run from the repository root with::

    python3 -m unittest discover -s audit -p 'test_*.py'

The vectors come from the Rust side: the entry example and the Certificate
Transparency root quoted in FORMAT.md (checked there by Rust unit tests), and
``testdata/export-v1.jsonl``, an export made by the real ``beffroi`` binary
(``WRITE_AUDIT_FIXTURE=1 cargo test --test it
the_binarys_export_verifies`` regenerates it: entries appended as the server does, entry 2
purged, two checkpoints signed by ``beffroi audit checkpoint`` (each also
recorded as an entry), then ``beffroi audit export --format jsonl``, which
recorded itself after the last entry and signed the covering checkpoint).
Its public key is in ``testdata/export-v1.key``.  The tests read the sizes
they expect from the fixture, so that regenerating it keeps them valid.
"""

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ed25519  # noqa: E402
import verify  # noqa: E402

FIXTURE = os.path.join(HERE, "testdata", "export-v1.jsonl")
FIXTURE_KEY = os.path.join(HERE, "testdata", "export-v1.key")


def read_fixture():
    with open(FIXTURE, "rb") as f:
        return f.read().split(b"\n")[:-1]


#: The fixture's shape: checkpoint sizes, and the last exported entry (every entry up to
#: it is exported: the fixture has no filter).
FIXTURE_HEADER = json.loads(read_fixture()[0])
SIZES = [c["tree_size"] for c in FIXTURE_HEADER["checkpoints"]]
T = SIZES[-1]
LAST = FIXTURE_HEADER["log_size"]


def fixture_key():
    with open(FIXTURE_KEY) as f:
        return bytes.fromhex(f.read().strip())


def join(lines):
    return b"".join(line + b"\n" for line in lines)


def edit(line, change):
    value = json.loads(line)
    change(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def run(data, key=None):
    """verify_export on bytes: the verdict line, or the Tampered message."""
    try:
        report = verify.verify_export(io.BytesIO(data), key or fixture_key())
    except verify.Tampered as e:
        return "TAMPERED: %s" % e
    return report.verdict()


# ---------------------------------------------------------------------------
# RFC 6962 trees, written from the definitions, to check the verifier against
# ---------------------------------------------------------------------------

def split(n):
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return verify.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    if len(leaves) <= 1:
        return []
    k = split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, complete):
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def leaves(n):
    return [verify.leaf_hash(b"entry %d" % i) for i in range(n)]


class HashingTests(unittest.TestCase):
    def test_documented_entry_example(self):
        # FORMAT.md section 2; the Rust test leaf_hash_matches_the_documented_example
        # checks the same value.
        entry = {
            "seq": 1, "time_us": 1764079200000000, "actor_id": 7,
            "actor_name": "Alice Martin", "actor_ip": "192.0.2.10", "request_id": "00ff",
            "action": "auth.sign_in", "target": None, "outcome": "success",
            "details": '{"method":"sso"}',
        }
        data = verify.canonical_bytes(entry)
        # The bytes FORMAT.md quotes: tag, seq, time_us, then actor_id "7" and "Alice Martin".
        self.assertEqual(data[:32].hex(),
                         "42464131" "0000000000000001" "0006446bb2125800" "0000000137"
                         "0000000c416c69")
        self.assertEqual(verify.leaf_hash(data).hex(),
                         "fc46f6b98b7738926321ebc6ff07f19a5e1ca16106eb8075d4506113d23bb286")

    def test_absent_and_empty_differ_and_ids_are_decimal(self):
        base = {"seq": 2, "time_us": -1, "actor_id": -30, "actor_name": "",
                "actor_ip": None, "request_id": None, "action": "a", "target": None,
                "outcome": "success", "details": "{}"}
        data = verify.canonical_bytes(base)
        self.assertIn(b"\x00\x00\x00\x03-30\x00\x00\x00\x00\xff\xff\xff\xff", data)
        self.assertEqual(data[12:20], b"\xff" * 8)

    def test_certificate_transparency_root(self):
        data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
                b"\x50\x51\x52\x53\x54\x55\x56\x57",
                bytes(range(0x60, 0x70))]
        self.assertEqual(mth([verify.leaf_hash(d) for d in data]).hex(),
                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")

    def test_inclusion_proofs(self):
        for n in range(1, 34):
            tree = leaves(n)
            root = mth(tree)
            for i in range(n):
                proof = path(i, tree)
                self.assertTrue(verify.verify_inclusion(tree[i], i, n, proof, root), (n, i))
                if n > 1:
                    self.assertFalse(verify.verify_inclusion(
                        tree[i], (i + 1) % n, n, proof, root), (n, i))
                    self.assertFalse(verify.verify_inclusion(
                        tree[i], i, n, proof[:-1], root), (n, i))
                self.assertFalse(verify.verify_inclusion(
                    verify.leaf_hash(b"forged"), i, n, proof, root))
            self.assertFalse(verify.verify_inclusion(tree[0], n, n, [], root))

    def test_consistency_proofs(self):
        for n in range(2, 34):
            tree = leaves(n)
            new_root = mth(tree)
            for m in range(1, n):
                old_root = mth(tree[:m])
                proof = subproof(m, tree, True)
                self.assertTrue(verify.verify_consistency(m, n, old_root, new_root, proof),
                                (m, n))
                forged = list(tree)
                forged[0] = verify.leaf_hash(b"rewritten")
                self.assertFalse(verify.verify_consistency(
                    m, n, old_root, mth(forged), subproof(m, forged, True)), (m, n))
                self.assertFalse(verify.verify_consistency(m, n, old_root, new_root, []))
                self.assertFalse(verify.verify_consistency(n, m, new_root, old_root, proof))

    def test_checkpoint_text_is_the_documented_one(self):
        root = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
        self.assertEqual(
            verify.checkpoint_message(8, root, 1764079200000000),
            b"beffroi-audit-checkpoint/v1\n8\n" + root.hex().encode() + b"\n1764079200000000\n")


class FixtureTests(unittest.TestCase):
    """The export made by the Rust binary, and what tampering with it gives."""

    def setUp(self):
        self.lines = read_fixture()

    def replaced(self, index, change):
        lines = list(self.lines)
        lines[index] = edit(lines[index], change)
        return join(lines)

    def test_the_fixture_verifies(self):
        self.assertEqual(
            run(join(self.lines)),
            "ok   audit export verified: %d entries (1 purged), %d checkpoints, covering tree "
            "size %d, root %s, sealed"
            % (LAST, len(SIZES), T, FIXTURE_HEADER["checkpoints"][-1]["root"]))
        self.assertEqual(len(self.lines), 1 + LAST + 1)
        self.assertGreaterEqual(len(SIZES), 3)

    def test_every_field_counts(self):
        changes = {
            "time_us": 1, "actor_id": 99, "actor_name": "Mallory", "actor_ip": "203.0.113.9",
            "request_id": "ffff", "action": "auth.sign_out", "target": "x",
            "outcome": "denied", "details": '{"n": 5}',
        }
        for field, value in changes.items():
            data = self.replaced(5, lambda v: v.__setitem__(field, value))
            self.assertEqual(run(data),
                             "TAMPERED: entry 5 does not match its hash (a field was changed)",
                             field)
        # null and "" differ.
        data = self.replaced(3, lambda v: v.__setitem__("actor_name", None))
        self.assertIn("entry 3 does not match its hash", run(data))

    def test_a_changed_entry_with_its_hash_recomputed_is_not_in_the_tree(self):
        def forge(v):
            v["outcome"] = "success"
            v["leaf_hash"] = verify.leaf_hash(verify.canonical_bytes(v)).hex()
        seq = next(v["seq"] for v in map(json.loads, self.lines[1:-1])
                   if v["outcome"] != "success" and not v["purged"])
        self.assertEqual(run(self.replaced(seq, forge)),
                         "TAMPERED: entry %d is not in the tree of the checkpoint at tree size "
                         "%d (history rewritten)" % (seq, T))

    def test_lines_removed_reordered_repeated_or_cut(self):
        lines = self.lines
        cases = [
            (lines[:7] + lines[8:], "entry 7 is missing (the next exported entry is 8)"),
            (lines[:4] + [lines[5], lines[4]] + lines[6:],
             "entry 4 is missing (the next exported entry is 5)"),
            (lines[:4] + [lines[3]] + lines[4:],
             "entry 3 is out of order (it comes after entry 3)"),
            (lines[:9], "the export is truncated after entry 8 (no seal)"),
            (lines[:1], "the export is truncated after the header (no seal)"),
            (lines + [lines[-1]], "the export continues after its seal"),
        ]
        for data, expected in cases:
            self.assertEqual(run(join(data)), "TAMPERED: " + expected)
        self.assertEqual(run(join(lines)[:-30]),
                         "TAMPERED: the export is truncated after entry %d (its last line is "
                         "incomplete)" % LAST)

    def test_an_export_of_the_whole_log_must_have_every_entry(self):
        # The server itself left entries out, links and seal made consistently: only an
        # unfiltered export can show it. Re-sealing needs the key: the fixture's is not
        # known, so the check is shown before the seal is read.
        lines = self.lines[:7] + self.lines[8:]
        lines[7] = edit(lines[7], lambda v: v.__setitem__("prev_seq", 6))
        header = json.loads(lines[0])
        header["filter"]["action"] = ""
        lines[0] = json.dumps(header).encode()
        self.assertEqual(run(join(lines)), "TAMPERED: entry 7 is missing (the next exported "
                                           "entry is 8)")
        lines = self.lines[:-2] + self.lines[-1:]
        self.assertEqual(run(join(lines)), "TAMPERED: entry %d is missing (the export of the "
                                           "whole log ends after entry %d)" % (LAST, LAST - 1))
        # With a criterion, gaps are expected: the same lines reach the seal.
        lines = self.lines[:7] + self.lines[8:]
        lines[7] = edit(lines[7], lambda v: v.__setitem__("prev_seq", 6))
        lines[0] = edit(lines[0], lambda v: v["filter"].__setitem__("action", "x"))
        self.assertIn("the seal counts %d entries but the export has %d" % (LAST, LAST - 1),
                      run(join(lines)))

    def test_a_removed_line_with_mended_links_is_caught_by_the_seal(self):
        lines = self.lines[:7] + self.lines[8:]
        lines[7] = edit(lines[7], lambda v: v.__setitem__("prev_seq", 6))
        lines[0] = edit(lines[0], lambda v: v["filter"].__setitem__("action", "auth.sign_in"))
        self.assertEqual(run(join(lines)),
                         "TAMPERED: the seal counts %d entries but the export has %d (lines "
                         "were added or removed)" % (LAST, LAST - 1))
        # Mending the count too leaves the digest, and the signature over it.
        lines[-1] = edit(lines[-1], lambda v: v["seal"].__setitem__("entries", LAST - 1))
        self.assertEqual(run(join(lines)),
                         "TAMPERED: the export was changed after it was sealed (its SHA-256 "
                         "differs)")
        digest = hashlib.sha256(join(lines[:-1])).hexdigest()
        lines[-1] = edit(lines[-1], lambda v: v["seal"].__setitem__("sha256", digest))
        self.assertEqual(run(join(lines)), "TAMPERED: the seal: bad signature")

    def test_checkpoints_forged_moved_or_signed_by_another_key(self):
        def flip_signature(v):
            sig = v["checkpoints"][1]["signature"]
            v["checkpoints"][1]["signature"] = ("1" if sig[0] == "0" else "0") + sig[1:]
        self.assertEqual(run(self.replaced(0, flip_signature)),
                         "TAMPERED: checkpoint at tree size %d: bad signature" % SIZES[1])
        self.assertEqual(
            run(self.replaced(0, lambda v: v["checkpoints"][0].__setitem__(
                "tree_size", SIZES[0] - 1))),
            "TAMPERED: checkpoint at tree size %d: bad signature" % (SIZES[0] - 1))
        self.assertEqual(
            run(self.replaced(0, lambda v: v["checkpoints"].reverse())),
            "TAMPERED: checkpoint at tree size %d is out of order (it comes after tree size %d)"
            % (SIZES[-2], SIZES[-1]))

        seed = bytes(range(32))
        intruder = ed25519.public_key_from_seed(seed)

        def resign(v):
            v["public_key"] = intruder.hex()
            for cp in v["checkpoints"]:
                message = verify.checkpoint_message(
                    cp["tree_size"], bytes.fromhex(cp["root"]), cp["time_us"])
                cp["public_key"] = intruder.hex()
                cp["signature"] = ed25519.sign(seed, message).hex()
        self.assertEqual(run(self.replaced(0, resign)),
                         "TAMPERED: checkpoint at tree size %d was signed by another key" % SIZES[0])
        # The genuine export under a key that is not the server's.
        self.assertEqual(run(join(self.lines), intruder),
                         "TAMPERED: checkpoint at tree size %d was signed by another key" % SIZES[0])
        # Only the header's copy of the key changed: compared, never trusted.
        self.assertEqual(
            run(self.replaced(0, lambda v: v.__setitem__("public_key", intruder.hex()))),
            "TAMPERED: the export names another key (%s) than the one given" % intruder.hex())

    def test_signatures_with_s_at_least_l_are_refused(self):
        # [S]B is the same point for S and S + L: a verifier that accepted both would let
        # anyone make a second valid signature from the first.
        def malleate(sig_hex):
            sig = bytes.fromhex(sig_hex)
            s = int.from_bytes(sig[32:], "little") + ed25519.L
            return (sig[:32] + s.to_bytes(32, "little")).hex()
        self.assertEqual(
            run(self.replaced(0, lambda v: v["checkpoints"][0].__setitem__(
                "signature", malleate(v["checkpoints"][0]["signature"])))),
            "TAMPERED: checkpoint at tree size %d: bad signature" % SIZES[0])
        self.assertEqual(
            run(self.replaced(-1, lambda v: v["seal"].__setitem__(
                "signature", malleate(v["seal"]["signature"])))),
            "TAMPERED: the seal: bad signature")

    def test_consistency_proofs_are_checked(self):
        def drop_hash(v):
            v["consistency"][1]["proof"].pop()
        self.assertEqual(run(self.replaced(0, drop_hash)),
                         "TAMPERED: checkpoint at tree size %d is not consistent with the "
                         "checkpoint at tree size %d (history rewritten)" % (SIZES[2], SIZES[1]))
        self.assertIn("consistency proofs for %d checkpoints" % len(SIZES),
                      run(self.replaced(0, lambda v: v["consistency"].pop())))

    def test_purged_entries(self):
        purged = json.loads(self.lines[2])
        self.assertTrue(purged["purged"])
        self.assertEqual((purged["actor_name"], purged["details"]), (None, "{}"))
        # Hiding a change behind the purged flag does not work...
        def hide(v):
            v["purged"] = True
            v["target"] = "elsewhere"
        self.assertEqual(run(self.replaced(8, hide)),
                         "TAMPERED: entry 8 is marked purged but keeps personal fields (a "
                         "field was changed)")
        # ...nor does replacing a purged entry's stored hash.
        self.assertEqual(
            run(self.replaced(2, lambda v: v.__setitem__("leaf_hash", "00" * 32))),
            "TAMPERED: entry 2 is not in the tree of the checkpoint at tree size %d (history "
            "rewritten)" % T)
        # Un-purging it without its fields is a changed entry.
        self.assertEqual(
            run(self.replaced(2, lambda v: v.__setitem__("purged", False))),
            "TAMPERED: entry 2 does not match its hash (a field was changed)")

    def test_malformed_lines_are_named(self):
        cases = [
            (lambda v: v.__setitem__("seq", True), "line 6 (after entry 4) is malformed: "
             "seq is not an integer in range"),
            (lambda v: v.__setitem__("extra", 1), "entry 5 is malformed: the line has "
             "unexpected 'extra'"),
            (lambda v: v.pop("proof"), "entry 5 is malformed: the line has missing 'proof'"),
            (lambda v: v.__setitem__("leaf_hash", v["leaf_hash"].upper()),
             "entry 5 is malformed: leaf_hash is not lowercase hexadecimal"),
            (lambda v: v.__setitem__("actor_id", "7"), "entry 5 is malformed: actor_id is not "
             "an integer in range"),
            (lambda v: v.__setitem__("details", {"n": 5}), "entry 5 is malformed: details is "
             "not text"),
        ]
        for change, expected in cases:
            self.assertEqual(run(self.replaced(5, change)), "TAMPERED: " + expected)
        lines = list(self.lines)
        lines[5] = lines[5][:-1] + b',"seq":5}'
        self.assertIn("line 6 (after entry 4) is not valid JSON (key 'seq' appears twice)",
                      run(join(lines)))
        lines[5] = lines[5].replace(b'"time_us":', b'"time_us":1.5e0,"x":', 1)
        self.assertIn("is not an integer", run(join(lines)))


class CommandLineTests(unittest.TestCase):
    def main(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = verify.main(list(args))
        return code, out.getvalue() + err.getvalue()

    def test_ok_with_the_key_as_hex_or_as_a_file(self):
        code, out = self.main(FIXTURE, "--public-key", FIXTURE_KEY)
        self.assertEqual(code, 0, out)
        self.assertTrue(out.startswith("ok   audit export verified: %d entries" % LAST), out)
        code, out = self.main(FIXTURE, "--public-key", fixture_key().hex().upper())
        self.assertEqual(code, 0, out)
        with tempfile.NamedTemporaryFile() as raw:
            raw.write(fixture_key())
            raw.flush()
            self.assertEqual(self.main(FIXTURE, "--public-key", raw.name)[0], 0)

    def test_tampered_exits_1_with_the_message(self):
        with tempfile.NamedTemporaryFile() as f:
            lines = read_fixture()
            f.write(join(lines[:7] + lines[8:]))
            f.flush()
            code, out = self.main(f.name, "--public-key", FIXTURE_KEY)
        self.assertEqual(code, 1)
        self.assertEqual(out, "error: audit export TAMPERED: entry 7 is missing (the next "
                              "exported entry is 8)\n")

    def test_weak_keys_are_refused_before_reading_the_export(self):
        weak = {
            "01" + "00" * 31: "small-order point",
            "00" * 32: "small-order point",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05": "small-order",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f": "y >= p",
            "01" + "00" * 30 + "80": "x = 0 with the sign bit set",
            "02" + "00" * 31: "not a point",
        }
        for key, reason in weak.items():
            code, out = self.main(FIXTURE, "--public-key", key)
            self.assertEqual(code, 2, key)
            self.assertIn("public key refused: ", out)
            self.assertIn(reason, out, key)
        code, out = self.main(FIXTURE, "--public-key", "/nonexistent/key")
        self.assertEqual(code, 2)
        self.assertIn("No such file", out)

    def test_what_is_not_an_export(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b'{"format":"something else"}\n')
            f.flush()
            code, out = self.main(f.name, "--public-key", FIXTURE_KEY)
        self.assertEqual(code, 2)
        self.assertIn("not a beffroi-audit-export/v1 file", out)
        code, out = self.main("/nonexistent/export", "--public-key", FIXTURE_KEY)
        self.assertEqual(code, 2)


if __name__ == "__main__":
    unittest.main()
