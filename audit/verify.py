#!/usr/bin/env python3
"""Independent verifier of Beffroi audit exports (beffroi-audit-export/v1).

Usage::

    python3 audit/verify.py EXPORT.jsonl --public-key HEX_OR_FILE

``--public-key`` is the server's checkpoint key, 64 hexadecimal digits, or a
file holding them (or the 32 raw bytes).  Get it from the server once, by a
channel you trust (``beffroi audit checkpoint`` prints it), and keep it: the
export names a key too, but that copy is only compared with yours, never
trusted.

Written from ``audit/FORMAT.md`` alone, with Python's standard library and
``ed25519.py`` (next to this file), so that an auditor need not trust the
server's code to check its log.  For every entry it recomputes the canonical
bytes and the leaf hash, and checks the inclusion proof against the covering
checkpoint; it checks every checkpoint's signature, the consistency proofs
between successive checkpoints, the order of the entries, and the seal that
the server signed over the whole file.

Exit status: 0 with one line "ok ..." when everything holds; 1 with
"audit export TAMPERED: <what>" naming the first bad entry (by sequence
number) or checkpoint (by tree size), in the words of ``beffroi audit verify``
where the problem is the same; 2 when the input cannot be checked at all (a
key that is refused, a file that is not an export).
"""

import argparse
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ed25519  # noqa: E402  (the path must be set up first)

EXPORT_FORMAT = "beffroi-audit-export/v1"
CHECKPOINT_CONTEXT = "beffroi-audit-checkpoint/v1"
SEAL_CONTEXT = "beffroi-audit-export-seal/v1"
ENTRY_TAG = b"BFA1"
ABSENT = 0xFFFFFFFF

HEADER_KEYS = {
    "format", "exported_at", "filter", "log_size", "record_seq", "public_key",
    "checkpoints", "consistency",
}
CHECKPOINT_KEYS = {"tree_size", "root", "time_us", "public_key", "signature"}
CONSISTENCY_KEYS = {"from", "to", "proof"}
#: The eight hashed fields, in the order of the canonical encoding.
FIELDS = ("actor_id", "actor_name", "actor_ip", "request_id", "action",
          "target", "outcome", "details")
ENTRY_KEYS = {"seq", "time_us", *FIELDS, "leaf_hash", "purged", "prev_seq", "proof"}
SEAL_KEYS = {"entries", "sha256", "signature"}
#: What the retention purge blanks (FORMAT.md section 5.4).
PURGED_BLANK = ("actor_id", "actor_name", "actor_ip", "request_id", "target")

I64 = (-(2**63), 2**63 - 1)
U64 = (0, 2**64 - 1)


class Tampered(Exception):
    """The export does not verify; the message names the first problem."""


class Unusable(Exception):
    """The input cannot be checked (refused key, not an export)."""


# ---------------------------------------------------------------------------
# Hashing (FORMAT.md sections 2 and 3: RFC 6962 section 2.1)
# ---------------------------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical_bytes(entry):
    """The BFA1 encoding of an entry given as a dict of its fields."""
    out = bytearray(ENTRY_TAG)
    out += struct.pack(">Q", entry["seq"])
    out += struct.pack(">q", entry["time_us"])
    for name in FIELDS:
        value = entry[name]
        if value is None:
            out += struct.pack(">I", ABSENT)
            continue
        if name == "actor_id":
            value = str(value)
        data = value.encode("utf-8")
        if len(data) >= ABSENT:
            raise ValueError("field %s is too long" % name)
        out += struct.pack(">I", len(data)) + data
    return bytes(out)


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2: is ``leaf`` at ``index`` in the tree of
    ``size`` leaves whose hash is ``root``?"""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2: is the tree of ``first`` leaves a prefix of
    the tree of ``second`` leaves?  (0 < first < second.)"""
    if not 0 < first < second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def checkpoint_message(tree_size, root, time_us):
    """FORMAT.md section 4: the text a checkpoint's signature covers."""
    return ("%s\n%d\n%s\n%d\n" % (CHECKPOINT_CONTEXT, tree_size, root.hex(),
                                  time_us)).encode("ascii")


def seal_message(entries, digest):
    """FORMAT.md section 5.5: the text the seal's signature covers."""
    return ("%s\n%d\n%s\n" % (SEAL_CONTEXT, entries, digest.hex())).encode("ascii")


# ---------------------------------------------------------------------------
# Strict reading of JSON values
# ---------------------------------------------------------------------------

class Malformed(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise Malformed("key %r appears twice" % key)
        seen[key] = value
    return seen


def _no_float(text):
    raise Malformed("number %s is not an integer" % text)


def _no_constant(text):
    raise Malformed("%s is not JSON" % text)


def parse_line(raw):
    """One line of the export as a JSON object, strictly: UTF-8, no duplicate
    keys, integers only."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates,
                           parse_float=_no_float, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Malformed("not valid JSON (%s)" % e) from None
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    return value


def keys_exactly(obj, expected, what):
    if not isinstance(obj, dict):
        raise Malformed("%s is not an object" % what)
    if set(obj) != expected:
        missing = sorted(expected - set(obj))
        extra = sorted(set(obj) - expected)
        raise Malformed("%s has %s" % (what, ", ".join(
            ["missing " + repr(k) for k in missing]
            + ["unexpected " + repr(k) for k in extra])))


def integer(value, what, bounds):
    # bool is a subclass of int in Python: true is not a sequence number.
    if type(value) is not int or not bounds[0] <= value <= bounds[1]:
        raise Malformed("%s is not an integer in range" % what)
    return value


def text_or_null(value, what):
    if value is not None and not isinstance(value, str):
        raise Malformed("%s is not text" % what)
    return value


def hex_bytes(value, length, what):
    if not isinstance(value, str) or len(value) != 2 * length:
        raise Malformed("%s is not %d bytes of hexadecimal" % (what, length))
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise Malformed("%s is not hexadecimal" % what) from None
    if data.hex() != value:
        # Lowercase only: one encoding per value.
        raise Malformed("%s is not lowercase hexadecimal" % what)
    return data


def hash_list(value, what):
    if not isinstance(value, list):
        raise Malformed("%s is not a list" % what)
    return [hex_bytes(v, 32, what) for v in value]


# ---------------------------------------------------------------------------
# The verification
# ---------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.entries = 0
        self.purged = 0
        self.checkpoints = 0
        self.tree_size = 0
        self.root = b""
        self.log_size = 0
        self.complete = False

    def verdict(self):
        return ("ok   audit export verified: %d entries (%d purged), %d checkpoints, "
                "covering tree size %d, root %s, sealed"
                % (self.entries, self.purged, self.checkpoints, self.tree_size,
                   self.root.hex()))


def check_header(header, public_key, report):
    """Checks the header; returns the covering checkpoint (size, root)."""
    if header.get("format") != EXPORT_FORMAT:
        raise Unusable("not a %s file (format is %r)"
                       % (EXPORT_FORMAT, header.get("format")))
    try:
        keys_exactly(header, HEADER_KEYS, "the header")
        report.log_size = integer(header["log_size"], "log_size", U64)
        integer(header["record_seq"], "record_seq", U64)
        if not isinstance(header["exported_at"], str):
            raise Malformed("exported_at is not text")
        if not isinstance(header["filter"], dict):
            raise Malformed("filter is not an object")
        header_key = hex_bytes(header["public_key"], 32, "public_key")
        checkpoints = header["checkpoints"]
        if not isinstance(checkpoints, list) or not checkpoints:
            raise Malformed("the header has no checkpoint")
        if not isinstance(header["consistency"], list):
            raise Malformed("consistency is not a list")
    except Malformed as e:
        raise Tampered("the header is malformed: %s" % e) from None

    verified = []
    for i, cp in enumerate(checkpoints):
        size = cp.get("tree_size") if isinstance(cp, dict) else None
        label = size if type(size) is int else "#%d" % (i + 1)
        try:
            keys_exactly(cp, CHECKPOINT_KEYS, "checkpoint %s" % label)
            size = integer(cp["tree_size"], "tree_size", (1, U64[1]))
            root = hex_bytes(cp["root"], 32, "root")
            time_us = integer(cp["time_us"], "time_us", I64)
            key = hex_bytes(cp["public_key"], 32, "public_key")
            signature = hex_bytes(cp["signature"], 64, "signature")
        except Malformed:
            raise Tampered("checkpoint at tree size %s: bad signature" % label) from None
        if verified and size <= verified[-1][0]:
            raise Tampered("checkpoint at tree size %d is out of order (it comes after "
                           "tree size %d)" % (size, verified[-1][0]))
        # Same order as beffroi audit verify: the signature, then whose key it is.
        if not ed25519.verify(key, checkpoint_message(size, root, time_us), signature):
            raise Tampered("checkpoint at tree size %d: bad signature" % size)
        if key != public_key:
            raise Tampered("checkpoint at tree size %d was signed by another key" % size)
        verified.append((size, root))
    if header_key != public_key:
        raise Tampered("the export names another key (%s) than the one given"
                       % header_key.hex())

    proofs = header["consistency"]
    if len(proofs) != len(verified) - 1:
        raise Tampered("the header has %d consistency proofs for %d checkpoints"
                       % (len(proofs), len(verified)))
    for (old, old_root), (new, new_root), item in zip(verified, verified[1:], proofs):
        try:
            keys_exactly(item, CONSISTENCY_KEYS, "a consistency proof")
            if item["from"] != old or item["to"] != new:
                raise Malformed("it is not from %d to %d" % (old, new))
            proof = hash_list(item["proof"], "proof")
        except Malformed as e:
            raise Tampered("consistency proof from tree size %d to %d is malformed: %s"
                           % (old, new, e)) from None
        if not verify_consistency(old, new, old_root, new_root, proof):
            raise Tampered("checkpoint at tree size %d is not consistent with the checkpoint "
                           "at tree size %d (history rewritten)" % (new, old))
    report.checkpoints = len(verified)
    report.tree_size, report.root = verified[-1]
    # Without a criterion every entry up to log_size must be there, gap-free.
    report.complete = not any(value not in (None, "") for value in header["filter"].values())
    return verified[-1]


def read_entry(line):
    """An entry line's values, type-checked; raises Malformed."""
    keys_exactly(line, ENTRY_KEYS, "the line")
    entry = {
        "seq": integer(line["seq"], "seq", (1, I64[1])),
        "time_us": integer(line["time_us"], "time_us", I64),
        "actor_id": None if line["actor_id"] is None
        else integer(line["actor_id"], "actor_id", I64),
    }
    for name in ("actor_name", "actor_ip", "request_id", "target"):
        entry[name] = text_or_null(line[name], name)
    for name in ("action", "outcome", "details"):
        if not isinstance(line[name], str):
            raise Malformed("%s is not text" % name)
        entry[name] = line[name]
    if type(line["purged"]) is not bool:
        raise Malformed("purged is not true or false")
    entry["purged"] = line["purged"]
    entry["leaf_hash"] = hex_bytes(line["leaf_hash"], 32, "leaf_hash")
    entry["prev_seq"] = integer(line["prev_seq"], "prev_seq", (0, I64[1]))
    entry["proof"] = hash_list(line["proof"], "proof")
    return entry


def check_entry(entry, prev, covering, report):
    seq = entry["seq"]
    size, root = covering
    if seq <= prev:
        raise Tampered("entry %d is out of order (it comes after entry %d)" % (seq, prev))
    if entry["prev_seq"] > prev:
        raise Tampered("entry %d is missing (the next exported entry is %d)"
                       % (entry["prev_seq"], seq))
    if entry["prev_seq"] < prev:
        raise Tampered("entry %d does not belong here (entry %d says it comes after "
                       "entry %d)" % (prev, seq, entry["prev_seq"]))
    if report.complete and seq != prev + 1:
        # An export of the whole log: the server left out an entry (beffroi audit verify's
        # words for a gap in the table).
        raise Tampered("entry %d is missing (the next exported entry is %d)" % (prev + 1, seq))
    if seq > report.log_size:
        raise Tampered("entry %d is past the end of the export (log size %d)"
                       % (seq, report.log_size))
    if seq > size:
        raise Tampered("entry %d is not covered by the checkpoint at tree size %d"
                       % (seq, size))
    if entry["purged"]:
        # The personal fields are gone by design: the stored hash, proved below, still
        # anchors the entry, but only if nothing else hides behind the purged flag.
        if any(entry[f] is not None for f in PURGED_BLANK) or entry["details"] != "{}":
            raise Tampered("entry %d is marked purged but keeps personal fields "
                           "(a field was changed)" % seq)
        report.purged += 1
    else:
        try:
            recomputed = leaf_hash(canonical_bytes(entry))
        except (ValueError, UnicodeEncodeError):
            recomputed = None
        if recomputed != entry["leaf_hash"]:
            raise Tampered("entry %d does not match its hash (a field was changed)" % seq)
    if not verify_inclusion(entry["leaf_hash"], seq - 1, size, entry["proof"], root):
        raise Tampered("entry %d is not in the tree of the checkpoint at tree size %d "
                       "(history rewritten)" % (seq, size))
    report.entries += 1


def check_seal(seal_line, digest, public_key, report):
    try:
        keys_exactly(seal_line, {"seal"}, "the seal line")
        seal = seal_line["seal"]
        keys_exactly(seal, SEAL_KEYS, "the seal")
        entries = integer(seal["entries"], "entries", U64)
        claimed = hex_bytes(seal["sha256"], 32, "sha256")
        signature = hex_bytes(seal["signature"], 64, "signature")
    except Malformed as e:
        raise Tampered("the seal is malformed: %s" % e) from None
    if entries != report.entries:
        raise Tampered("the seal counts %d entries but the export has %d (lines were "
                       "added or removed)" % (entries, report.entries))
    if claimed != digest:
        raise Tampered("the export was changed after it was sealed (its SHA-256 differs)")
    if not ed25519.verify(public_key, seal_message(entries, digest), signature):
        raise Tampered("the seal: bad signature")


def verify_export(stream, public_key):
    """Verifies an export read from the binary ``stream`` against the trusted
    ``public_key`` (32 bytes, already checked).  Returns a Report; raises
    Tampered or Unusable."""
    report = Report()
    digest = hashlib.sha256()
    first = stream.readline()
    if not first:
        raise Unusable("the file is empty")
    if not first.endswith(b"\n"):
        raise Tampered("the export is truncated in its header")
    try:
        header = parse_line(first)
    except Malformed as e:
        raise Unusable("the first line is not an export header: %s" % e) from None
    covering = check_header(header, public_key, report)
    digest.update(first)
    prev = 0
    number = 1
    while True:
        raw = stream.readline()
        number += 1
        where = "after entry %d" % prev if prev else "after the header"
        if not raw:
            raise Tampered("the export is truncated %s (no seal)" % where)
        if not raw.endswith(b"\n"):
            raise Tampered("the export is truncated %s (its last line is incomplete)" % where)
        try:
            line = parse_line(raw)
        except Malformed as e:
            raise Tampered("line %d (%s) is %s" % (number, where, e)) from None
        if "seal" in line:
            if report.complete and prev != report.log_size:
                raise Tampered("entry %d is missing (the export of the whole log ends after "
                               "entry %d)" % (prev + 1, prev))
            check_seal(line, digest.digest(), public_key, report)
            if stream.readline():
                raise Tampered("the export continues after its seal")
            return report
        try:
            entry = read_entry(line)
        except Malformed as e:
            seq = line.get("seq")
            name = "entry %d" % seq if type(seq) is int else "line %d (%s)" % (number, where)
            raise Tampered("%s is malformed: %s" % (name, e)) from None
        check_entry(entry, prev, covering, report)
        prev = entry["seq"]
        digest.update(raw)


def load_public_key(arg):
    """The key from hex text or a file of hex or raw bytes; refused unless
    ``ed25519.check_public_key`` accepts it."""
    text = arg.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        key = bytes.fromhex(text)
    else:
        try:
            with open(arg, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Unusable("public key %s: %s" % (arg, e.strerror)) from None
        stripped = data.strip()
        if len(stripped) == 64:
            try:
                key = bytes.fromhex(stripped.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                key = data
        else:
            key = data
    try:
        ed25519.check_public_key(key)
    except ValueError as e:
        raise Unusable("public key refused: %s" % e) from None
    return key


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Verify a Beffroi audit export (JSONL) against the server's public key.")
    parser.add_argument("export", help="the export file (beffroi audit export --format jsonl)")
    parser.add_argument("--public-key", required=True, metavar="HEX_OR_FILE",
                        help="the checkpoint key: 64 hex digits, or a file holding them")
    args = parser.parse_args(argv)
    try:
        key = load_public_key(args.public_key)
        try:
            stream = open(args.export, "rb")
        except OSError as e:
            raise Unusable("%s: %s" % (args.export, e.strerror)) from None
        with stream:
            report = verify_export(stream, key)
    except Unusable as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except Tampered as e:
        print("error: audit export TAMPERED: %s" % e, file=sys.stderr)
        return 1
    print(report.verdict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
