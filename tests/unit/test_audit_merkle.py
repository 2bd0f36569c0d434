"""RFC 9162 Merkle trees: published vectors, proofs that fail when anything about them is changed, properties.

The vectors (tests/vectors/merkle_rfc9162_v1.json) are the published RFC 6962/9162 test vectors of the 8-leaf
reference tree, copied from transparency-dev/merkle's proof/verify_test.go (see the file's ``source``). The
property tests compare MemoryTree and CompactRange with a reference written here straight from the RFC's
recursive definitions (MTH, PATH, PROOF/SUBPROOF over the leaf list), for random trees of up to 300 leaves.

A note on "wrong size": RFC 9162's inclusion verification binds the size only through the root, and paths of
a leaf in two sizes can coincide (leaf 0 has the same path in trees of 3 and 4 leaves when the right part is
a single hash). So the size mutations here are the published ones (size * 2, size // 2), which always change
the path's length; the ledger signs size and root together in a checkpoint, which closes the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.domain.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    ProofError,
    TreeSizeError,
    consistency_spans,
    inclusion_spans,
    leaf_hash,
    node_hash,
    span_subtrees,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "merkle_rfc9162_v1.json").read_text())
LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves"]]
ROOTS = {int(size): bytes.fromhex(root) for size, root in VECTORS["roots"].items()}
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def hexes(values: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def reference_tree() -> MemoryTree:
    tree = MemoryTree()
    for leaf in LEAVES:
        tree.append(leaf)
    return tree


# --- A reference straight from the RFC's definitions (2.1.1, 2.1.3.1, 2.1.4.1) --------------------------


class Reference:
    """MTH, PATH and PROOF over an explicit leaf list, recursively, as RFC 9162 writes them."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self._mth: dict[tuple[int, int], bytes] = {}

    def mth(self, start: int, end: int) -> bytes:
        if (start, end) not in self._mth:
            n = end - start
            if n == 0:
                value = hashlib.sha256(b"").digest()
            elif n == 1:
                value = hashlib.sha256(b"\x00" + self.leaves[start]).digest()
            else:
                k = 1
                while k * 2 < n:
                    k *= 2
                value = hashlib.sha256(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end)).digest()
            self._mth[(start, end)] = value
        return self._mth[(start, end)]

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.mth(start, end)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return [*self.subproof(m, start, start + k, complete), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True) if 0 < m < n else []


# --- Mutations: every one must be refused --------------------------------------------------------------------


def flipped(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


def inclusion_mutations(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes, foreign_leaf: bytes
) -> list[tuple[str, Callable[[], None]]]:
    """Every changed input as ``(name, call)``; each call must raise ProofError."""

    def call(leaf: bytes = leaf, index: int = index, size: int = size, proof: Sequence[bytes] = proof,
             root: bytes = root) -> Callable[[], None]:
        return lambda: verify_inclusion(leaf, index, size, proof, root)

    cases = [
        ("index - 1", call(index=index - 1)),
        ("index + 1", call(index=index + 1)),
        ("index ^ 2", call(index=index ^ 2)),
        ("size * 2", call(size=size * 2)),
        ("size // 2", call(size=size // 2)),
        ("leaf from another tree", call(leaf=foreign_leaf)),
        ("leaf hash instead of leaf input", call(leaf=leaf_hash(leaf))),
        ("empty tree root", call(root=EMPTY_ROOT)),
        ("some other root", call(root=SOME_HASH)),
        ("flipped root bit", call(root=flipped(root, 77))),
        ("short root", call(root=root[:31])),
        ("extended with the root", call(proof=[*proof, root])),
        ("extended with a hash", call(proof=[*proof, SOME_HASH])),
        ("extended in front", call(proof=[root, *proof])),
        ("empty element appended", call(proof=[*proof, b""])),
    ]
    if proof:
        cases += [
            ("truncated at the end", call(proof=proof[:-1])),
            ("truncated in front", call(proof=proof[1:])),
            ("inserted element", call(proof=[proof[0], SOME_HASH, *proof[1:]])),
            ("reversed path", call(proof=proof[::-1])) if len(proof) > 1 and proof != proof[::-1] else
            ("element cut short", call(proof=[proof[0][:31], *proof[1:]])),
        ]
        for position in range(len(proof)):
            for bit in (0, 3, 255):
                changed = list(proof)
                changed[position] = flipped(changed[position], bit)
                cases.append((f"proof[{position}] bit {bit}", call(proof=changed)))
    return cases


def consistency_mutations(
    first: int, second: int, proof: list[bytes], first_root: bytes, second_root: bytes
) -> list[tuple[str, Callable[[], None]]]:
    """Every changed input of a non-trivial consistency proof (0 < first < second)."""

    def call(first: int = first, second: int = second, proof: Sequence[bytes] = proof,
             first_root: bytes = first_root, second_root: bytes = second_root) -> Callable[[], None]:
        return lambda: verify_consistency(first, second, proof, first_root, second_root)

    cases = [
        ("first - 1", call(first=first - 1)),
        ("first + 1", call(first=first + 1)),
        ("first ^ 2", call(first=first ^ 2)),
        ("second * 2", call(second=second * 2)),
        ("second // 2", call(second=second // 2)),
        ("sizes swapped", call(first=second, second=first)),
        ("wrong first root", call(first_root=SOME_HASH)),
        ("wrong second root", call(second_root=SOME_HASH)),
        ("swapped roots", call(first_root=second_root, second_root=first_root)),
        ("first root bit", call(first_root=flipped(first_root, 9))),
        ("second root bit", call(second_root=flipped(second_root, 9))),
        ("empty proof", call(proof=[])),
        ("extended with first root", call(proof=[*proof, first_root])),
        ("extended with second root", call(proof=[*proof, second_root])),
        ("extended with a hash", call(proof=[*proof, SOME_HASH])),
        ("extended in front", call(proof=[second_root, *proof])),
        ("first element repeated in front", call(proof=[proof[0], *proof])),
        ("truncated at the end", call(proof=proof[:-1])),
        ("truncated in front", call(proof=proof[1:])),
        ("element cut short", call(proof=[proof[0][:31], *proof[1:]])),
    ]
    for position in range(len(proof)):
        for bit in (4, 128):
            changed = list(proof)
            changed[position] = flipped(changed[position], bit)
            cases.append((f"proof[{position}] bit {bit}", call(proof=changed)))
    return cases


def assert_all_refused(cases: list[tuple[str, Callable[[], None]]]) -> None:
    accepted = []
    for name, case in cases:
        try:
            case()
        except ProofError:
            continue
        accepted.append(name)
    assert accepted == [], f"mutated proofs verified: {accepted}"


# --- Hashes and the published vectors ------------------------------------------------------------------------


def test_hashes_use_the_rfc_prefixes_and_the_empty_root_is_the_hash_of_nothing():
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == bytes.fromhex(VECTORS["empty_root"])
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert MemoryTree().root() == CompactRange().root() == EMPTY_ROOT
    assert leaf_hash(b"") != EMPTY_ROOT  # a one-leaf tree of an empty input is not the empty tree


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_of_the_reference_tree_match_the_published_ones(size):
    tree, compact = reference_tree(), CompactRange()
    for leaf in LEAVES[:size]:
        compact.append(leaf)
    assert tree.root(size) == compact.root() == ROOTS[size]
    assert tree.root(0) == EMPTY_ROOT


def test_the_whole_reference_tree_has_the_published_root_of_size_8():
    assert reference_tree().root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"leaf{v['leaf_index']}-of-{v['tree_size']}")
def test_published_inclusion_proofs_are_generated_verified_and_every_mutation_fails(vector):
    index, size, path = vector["leaf_index"], vector["tree_size"], hexes(vector["path"])
    assert reference_tree().inclusion_proof(index, size) == path
    verify_inclusion(LEAVES[index], index, size, path, ROOTS[size])
    assert_all_refused(inclusion_mutations(LEAVES[index], index, size, path, ROOTS[size], b"another tree's leaf"))


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=lambda v: f"{v['first']}-to-{v['second']}")
def test_published_consistency_proofs_are_generated_verified_and_every_mutation_fails(vector):
    first, second, proof = vector["first"], vector["second"], hexes(vector["proof"])
    assert reference_tree().consistency_proof(first, second) == proof
    verify_consistency(first, second, proof, ROOTS[first], ROOTS[second])
    if first < second:
        assert_all_refused(consistency_mutations(first, second, proof, ROOTS[first], ROOTS[second]))


def test_the_refusals_say_why():
    path = hexes(VECTORS["inclusion"][2]["path"])  # leaf 5 of 8
    reasons = {}
    for name, args in {
        "wrong_size": (LEAVES[5], 8, 8, path, ROOTS[8]),
        "proof_length": (LEAVES[5], 5, 8, path[:-1], ROOTS[8]),
        "proof_length ": (LEAVES[5], 5, 8, [*path, ROOTS[8]], ROOTS[8]),
        "root_mismatch": (LEAVES[4], 5, 8, path, ROOTS[8]),
        "hash_length": (LEAVES[5], 5, 8, [*path[:-1], path[-1][:5]], ROOTS[8]),
    }.items():
        with pytest.raises(ProofError) as caught:
            verify_inclusion(*args)
        reasons[name] = caught.value.reason
    assert reasons == {name: name.strip() for name in reasons}
    consistency = hexes(VECTORS["consistency"][2]["proof"])  # 6 to 8
    for proof in ([], consistency[:-1], [*consistency, ROOTS[8]]):
        with pytest.raises(ProofError, match="proof_length"):
            verify_consistency(6, 8, proof, ROOTS[6], ROOTS[8])
    with pytest.raises(ProofError, match="wrong_size"):
        verify_consistency(8, 6, [], ROOTS[8], ROOTS[6])


def test_consistency_at_the_edges_needs_empty_proofs_and_matching_roots():
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 8, [], EMPTY_ROOT, ROOTS[8])  # everything extends the empty tree
    verify_consistency(8, 8, [], ROOTS[8], ROOTS[8])
    for first, second, proof, first_root, second_root in [
        (0, 8, [], ROOTS[1], ROOTS[8]),  # the empty tree has one root
        (0, 8, [ROOTS[8]], EMPTY_ROOT, ROOTS[8]),
        (8, 8, [], ROOTS[8], ROOTS[7]),
        (8, 8, [ROOTS[8]], ROOTS[8], ROOTS[8]),
        (1, 1, [], ROOTS[1], SOME_HASH),
    ]:
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof, first_root, second_root)


def test_inclusion_in_an_empty_tree_or_beyond_it_fails():
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError, match="wrong_size"):
            verify_inclusion(b"data", index, size, [], leaf_hash(b"data"))
    verify_inclusion(b"data", 0, 1, [], leaf_hash(b"data"))  # a one-leaf tree's root is its leaf hash


def test_trees_refuse_sizes_and_indexes_they_do_not_have():
    tree = reference_tree()
    for call in (lambda: tree.root(9), lambda: tree.root(-1), lambda: tree.inclusion_proof(8, 8),
                 lambda: tree.inclusion_proof(0, 9), lambda: tree.inclusion_proof(-1, 8),
                 lambda: tree.consistency_proof(5, 4), lambda: tree.consistency_proof(3, 9)):
        with pytest.raises(TreeSizeError):
            call()


def test_spans_break_into_aligned_complete_subtrees():
    assert span_subtrees(0, 8) == [(3, 0)]
    assert span_subtrees(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert span_subtrees(4, 7) == [(1, 2), (0, 6)]
    assert span_subtrees(0, 1_000_000) == [(19, 0), (18, 2), (17, 6), (16, 14), (14, 60), (9, 1952), (6, 15624)]
    for start, end in [(1, 3), (2, 6), (5, 5), (3, 2)]:
        with pytest.raises(ValueError):
            span_subtrees(start, end)
    assert inclusion_spans(5, 8) == [(4, 5), (6, 8), (0, 4)]
    assert consistency_spans(6, 8) == [(4, 6), (6, 8), (0, 4)]
    assert consistency_spans(4, 8) == [(4, 8)]  # first is a power of two: its root is known, not sent


def test_a_compact_range_resumes_from_its_subtrees_and_reports_what_each_append_completes():
    whole = CompactRange()
    for leaf in LEAVES[:5]:
        whole.append(leaf)
    resumed = CompactRange.resume(5, whole.subtrees())
    created = resumed.append_leaf_hash(leaf_hash(LEAVES[5]))  # leaf 5 completes node (1, 2)
    assert [node for node, _ in created] == [(0, 5), (1, 2)]
    assert created[1][1] == node_hash(leaf_hash(LEAVES[4]), leaf_hash(LEAVES[5]))
    assert [node for node, _ in resumed.append_leaf_hash(leaf_hash(LEAVES[6]))] == [(0, 6)]
    assert [node for node, _ in resumed.append_leaf_hash(leaf_hash(LEAVES[7]))] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert resumed.root() == ROOTS[8] and resumed.size == 8
    with pytest.raises(ValueError):
        CompactRange.resume(5, whole.subtrees()[:1])


# --- Properties ------------------------------------------------------------------------------------------------


def synthetic_leaves(size: int, salt: bytes) -> list[bytes]:
    """``size`` distinct leaf inputs of varied lengths (the size is what the properties are about)."""
    return [salt[: index % (len(salt) + 1)] + index.to_bytes(2, "big") for index in range(size)]


tree_sizes = st.integers(1, 300)
salts = st.binary(max_size=16)


@settings(max_examples=40, deadline=None)
@given(n=tree_sizes, salt=salts, data=st.data())
def test_memory_tree_and_compact_range_agree_with_the_rfc_definitions_at_every_size(n, salt, data):
    leaves = synthetic_leaves(n, salt)
    reference, tree, compact = Reference(leaves), MemoryTree(), CompactRange()
    roots = [EMPTY_ROOT]
    for position, leaf in enumerate(leaves):
        assert tree.append(leaf) == position
        compact.append(leaf)
        assert compact.root() == tree.root() == reference.mth(0, position + 1)
        roots.append(compact.root())
    assert [tree.root(m) for m in range(n + 1)] == roots

    for size in {n, data.draw(st.integers(1, n), label="size")}:
        for index in range(size):
            path = tree.inclusion_proof(index, size)
            assert path == reference.path(index, 0, size)
            verify_inclusion(leaves[index], index, size, path, roots[size])

    for _ in range(10):
        second = data.draw(st.integers(0, n), label="second")
        first = data.draw(st.integers(0, second), label="first")
        proof = tree.consistency_proof(first, second)
        assert proof == reference.proof(first, second)
        verify_consistency(first, second, proof, roots[first], roots[second])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), salt=salts, data=st.data())
def test_mutated_proofs_of_random_trees_all_fail(n, salt, data):
    leaves = synthetic_leaves(n, salt)
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    foreign = b"foreign:" + data.draw(st.binary(max_size=8), label="foreign leaf")  # no leaf of this tree
    path = tree.inclusion_proof(index, size)
    assert_all_refused(inclusion_mutations(leaves[index], index, size, path, tree.root(size), foreign))

    second = data.draw(st.integers(2, n), label="second")
    first = data.draw(st.integers(1, second - 1), label="first")
    proof = tree.consistency_proof(first, second)
    assert_all_refused(consistency_mutations(first, second, proof, tree.root(first), tree.root(second)))
