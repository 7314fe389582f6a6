//! The Merkle tree of RFC 6962 §2.1 (Certificate Transparency) over audit entries: leaf and node
//! hashes with distinct prefixes (so a leaf can never pass for a node), the tree head, and
//! inclusion and consistency proofs with their verification (RFC 9162 §2.1.3.2, §2.1.4.2).
//!
//! Pure functions over hashes, and [`MerkleTree`] to prove many entries of one tree; no storage,
//! no I/O. The independent Python verifier (`audit/verify.py`) implements the same rules on its
//! own, from `audit/FORMAT.md`.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// RFC 6962: leaf hash = SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962: node hash = SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle tree hash MTH(D[n]) of the leaf hashes (see [`CompactTree`]).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut tree = CompactTree::default();
    for leaf in leaves {
        tree.push(*leaf);
    }
    tree.root()
}

/// A tree grown one leaf at a time, keeping only the roots of its complete subtrees (O(log n)
/// memory). Its [`root`](Self::root) at any size equals RFC 6962's recursive MTH of the leaves
/// so far, so a verifier streaming a million entries checks every checkpoint's root in one
/// pass instead of rebuilding each prefix.
#[derive(Debug, Clone, Default)]
pub struct CompactTree {
    /// (height, hash) of complete subtrees, largest (leftmost) first.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl CompactTree {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of the leaves pushed so far: the complete subtrees folded from the right.
    pub fn root(&self) -> Hash {
        let mut nodes = self.stack.iter().rev();
        let Some((_, last)) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |acc, (_, left)| node_hash(left, &acc))
    }
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// RFC 6962 §2.1.1: the audit path PATH(m, D[n]) for leaf `index`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let mut proof = Vec::new();
    path(leaves, index, &mut proof);
    proof
}

fn path(leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(left, m, out);
        out.push(root(right));
    } else {
        path(right, m - k, out);
        out.push(root(left));
    }
}

/// RFC 9162 §2.1.3.2: checks that `leaf` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    expected_root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == expected_root
}

/// RFC 6962 §2.1.2: PROOF(m, D[n]), showing the tree of the first `old_size` leaves is a prefix
/// of the tree of all `leaves`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Vec<Hash> {
    let mut proof = Vec::new();
    if old_size == 0 || old_size >= leaves.len() {
        return proof;
    }
    subproof(old_size, leaves, true, &mut proof);
    proof
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, out);
        out.push(root(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(root(left));
    }
}

/// RFC 9162 §2.1.4.2: checks a consistency proof between two tree heads.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut proof: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        proof.insert(0, *old_root);
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &fr == old_root && &sr == new_root
}

/// A log's Merkle tree kept in memory as its complete subtrees, so that proofs for many entries
/// cost O(log² n) hashes each instead of rehashing the log for every proof (an export proves up
/// to every entry of the log). `levels[h][i]` is the hash of the 2^h leaves from `i·2^h`; a
/// ragged right edge is not stored but recomputed from complete subtrees, following RFC 6962's
/// definition. Memory: about twice the leaf hashes. The proofs equal [`inclusion_proof`] and
/// [`consistency_proof`] on the same leaves (tested below).
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|l| l.len() >= 2) {
            let above = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// How many leaves the tree holds.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// MTH of the leaves `start..end` (RFC 6962 §2.1), or `None` past the last leaf.
    fn subtree(&self, start: usize, end: usize) -> Option<Hash> {
        let n = end.checked_sub(start)?;
        if n == 0 {
            return Some(empty_root());
        }
        if n.is_power_of_two() && start % n == 0 {
            let height = n.trailing_zeros() as usize;
            return self.levels.get(height)?.get(start >> height).copied();
        }
        let k = split(n);
        Some(node_hash(
            &self.subtree(start, start + k)?,
            &self.subtree(start + k, end)?,
        ))
    }

    /// The root of the tree of the first `size` leaves; `None` if the tree has fewer.
    pub fn root(&self, size: u64) -> Option<Hash> {
        self.subtree(0, usize::try_from(size).ok()?)
    }

    /// PATH(index, D[size]) (RFC 6962 §2.1.1); `None` unless `index < size <= len`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        let (index, size) = (usize::try_from(index).ok()?, usize::try_from(size).ok()?);
        if index >= size || size as u64 > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof)?;
        Some(proof)
    }

    fn path(&self, m: usize, start: usize, end: usize, out: &mut Vec<Hash>) -> Option<()> {
        let n = end - start;
        if n <= 1 {
            return Some(());
        }
        let k = split(n);
        if m < k {
            self.path(m, start, start + k, out)?;
            out.push(self.subtree(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, out)?;
            out.push(self.subtree(start, start + k)?);
        }
        Some(())
    }

    /// PROOF(old_size, D[new_size]) (RFC 6962 §2.1.2); `None` unless
    /// `old_size <= new_size <= len`. Empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Option<Vec<Hash>> {
        let (m, n) = (
            usize::try_from(old_size).ok()?,
            usize::try_from(new_size).ok()?,
        );
        if m > n || n as u64 > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        if m > 0 && m < n {
            self.subproof(m, 0, n, true, &mut proof)?;
        }
        Some(proof)
    }

    fn subproof(
        &self,
        m: usize,
        start: usize,
        end: usize,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Option<()> {
        let n = end - start;
        if m == n {
            if !complete {
                out.push(self.subtree(start, end)?);
            }
            return Some(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, out)?;
            out.push(self.subtree(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, out)?;
            out.push(self.subtree(start, start + k)?);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's recursive definition, to check the one-pass version against.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn certificate_transparency_test_vector() {
        // The eight leaves of the Certificate Transparency reference tests and their root.
        let data: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        assert_eq!(
            hex::encode(root(&hashes)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn one_pass_root_equals_the_recursive_definition() {
        for n in 0..70 {
            let l = leaves(n);
            assert_eq!(root(&l), mth(&l), "n = {n}");
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_tampering_fails() {
        for n in 1..40usize {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let proof = inclusion_proof(&l, i);
                assert!(
                    verify_inclusion(&l[i], i as u64, n as u64, &proof, &r),
                    "n={n} i={i}"
                );
                let other = leaf_hash(b"forged");
                assert!(!verify_inclusion(&other, i as u64, n as u64, &proof, &r));
                if n > 1 {
                    assert!(
                        !verify_inclusion(&l[i], ((i + 1) % n) as u64, n as u64, &proof, &r),
                        "n={n} i={i}"
                    );
                }
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = leaf_hash(first);
                    assert!(!verify_inclusion(&l[i], i as u64, n as u64, &bad, &r));
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_rewritten_history_fails() {
        for n in 1..40usize {
            let l = leaves(n);
            let new_root = root(&l);
            for m in 1..=n {
                let old_root = root(&l[..m]);
                let proof = consistency_proof(&l, m);
                assert!(
                    verify_consistency(m as u64, n as u64, &old_root, &new_root, &proof),
                    "m={m} n={n}"
                );
                if m < n {
                    // History rewritten: entry 0 changed after the old checkpoint.
                    let mut forged = l.clone();
                    forged[0] = leaf_hash(b"rewritten");
                    let forged_root = root(&forged);
                    let forged_proof = consistency_proof(&forged, m);
                    assert!(
                        !verify_consistency(
                            m as u64,
                            n as u64,
                            &old_root,
                            &forged_root,
                            &forged_proof
                        ),
                        "m={m} n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn stored_tree_gives_the_same_roots_and_proofs_as_the_definition() {
        let all = leaves(70);
        let tree = MerkleTree::new(all.clone());
        assert_eq!(tree.len(), 70);
        assert!(MerkleTree::new(Vec::new()).is_empty());
        for n in 0..=70usize {
            let l = &all[..n];
            assert_eq!(tree.root(n as u64), Some(root(l)), "n = {n}");
            for i in 0..n {
                assert_eq!(
                    tree.inclusion_proof(i as u64, n as u64),
                    Some(inclusion_proof(l, i)),
                    "n={n} i={i}"
                );
            }
            for m in 0..=n {
                assert_eq!(
                    tree.consistency_proof(m as u64, n as u64),
                    Some(consistency_proof(l, m)),
                    "m={m} n={n}"
                );
            }
        }
        // Past the end, or backwards: no proof rather than a wrong one.
        assert_eq!(tree.root(71), None);
        assert_eq!(tree.inclusion_proof(5, 71), None);
        assert_eq!(tree.inclusion_proof(5, 5), None);
        assert_eq!(tree.consistency_proof(6, 5), None);
        assert_eq!(tree.consistency_proof(5, 71), None);
    }

    #[test]
    fn compact_tree_root_equals_the_recursive_definition_at_every_size() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tree = CompactTree::default();
        assert_eq!(tree.root(), empty_root());
        for (n, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            assert_eq!(tree.size(), n as u64 + 1);
            assert_eq!(tree.root(), mth(&leaves[..=n]), "size {}", n + 1);
        }
    }
}
