"""RFC 9162 section 2.1 Merkle trees over SHA-256: hashes, trees, proofs and their verification (pure).

The tree hash MTH of an ordered list of leaf inputs D[n] (RFC 9162 2.1.1): ``SHA-256()`` for the empty
list, ``SHA-256(0x00 || d(0))`` for one input, else ``SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with
``k`` the largest power of two smaller than ``n``.

Every node of such a tree covers a span of leaves ``[start, end)``. A **complete subtree** ``(level,
index)`` covers ``[index * 2**level, (index + 1) * 2**level)``; it never changes once its last leaf is
appended, so it is what a store keeps (docs/adr/0012-audit-ledger.md). Any other node of a tree of size
``n`` lies on the right edge, ``[start, n)``, and its hash is the right fold of the complete subtrees its
span breaks into (:func:`span_subtrees`): a root, or a proof node, at any size is assembled from
O(log n) stored hashes and no leaf is hashed again.

Proof *generation* (PATH, 2.1.3.1; PROOF/SUBPROOF, 2.1.4.1) is written once, as the list of spans whose
hashes form the proof (:func:`inclusion_spans`, :func:`consistency_spans`), and evaluated against any
:class:`SubtreeSource` (:class:`MemoryTree` here, ``SqlTree`` in services/audit/adapters/tree_store.py).
*Verification* (:func:`verify_inclusion`, 2.1.3.2; :func:`verify_consistency`, 2.1.4.2) follows the
RFC's algorithms step by step and knows nothing of how proofs are made.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

NodeId = tuple[int, int]
"""A complete subtree ``(level, index)``: leaves ``[index * 2**level, (index + 1) * 2**level)``."""
Span = tuple[int, int]
"""A node of a tree by the leaves it covers, ``[start, end)``."""


class ProofError(Exception):
    """A proof did not verify. ``reason`` says why, for callers and logs:

    ``wrong_size`` (an index or size the proof cannot be about), ``proof_length`` (too few or too many
    hashes for the index and sizes), ``hash_length`` (a hash that is not 32 bytes), ``root_mismatch``
    (the recomputed root differs from the one given).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TreeSizeError(ValueError):
    """A tree was asked about a size or index it does not have (beyond its size, negative, first > second)."""


def leaf_hash(leaf_input: bytes) -> bytes:
    """``SHA-256(0x00 || leaf_input)``."""
    return hashlib.sha256(_LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- Which spans a root or a proof is made of (RFC 9162 2.1.3.1 and 2.1.4.1) ----------------------------


def span_subtrees(start: int, end: int) -> list[NodeId]:
    """The complete subtrees, left to right, whose right fold is the hash of the tree node ``[start, end)``.

    ``start`` must be a multiple of the largest power of two not above ``end - start`` (true of every node
    of a Merkle tree: RFC 9162 always splits at a power of two). ``[0, n)`` gives the tree's root.
    """
    if not 0 <= start < end:
        raise ValueError(f"not a span of leaves: [{start}, {end})")
    subtrees: list[NodeId] = []
    position, remaining = start, end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            if position % (1 << level):
                raise ValueError(f"[{start}, {end}) is not a node of a Merkle tree")
            subtrees.append((level, position >> level))
            position += 1 << level
    return subtrees


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """The right fold ``h0 . (h1 . (... . hk))`` of complete-subtree hashes, left to right; empty: EMPTY_ROOT."""
    if not hashes:
        return EMPTY_ROOT
    folded = hashes[-1]
    for left in reversed(hashes[:-1]):
        folded = node_hash(left, folded)
    return folded


def inclusion_spans(index: int, size: int) -> list[Span]:
    """The spans of PATH(index, D[size]), leaf side first (RFC 9162 2.1.3.1); ``0 <= index < size``."""
    if not 0 <= index < size:
        raise TreeSizeError(f"no leaf {index} in a tree of {size}")
    spans: list[Span] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index - start < k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            spans.append((start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            spans.append((start, start + k))
            start += k
    spans.reverse()
    return spans


def consistency_spans(first: int, second: int) -> list[Span]:
    """The spans of PROOF(first, D[second]) (RFC 9162 2.1.4.1); empty when ``first`` is 0 or ``second``."""
    if not 0 <= first <= second:
        raise TreeSizeError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    spans: list[Span] = []
    m, start, end, known = first, 0, second, True
    while m != end:  # the relative m, m - start, equals the relative n, end - start
        k = _largest_power_of_two_below(end - start)
        if m - start <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            spans.append((start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            spans.append((start, start + k))
            start += k
            known = False
    if not known:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        spans.append((start, end))
    spans.reverse()
    return spans


# --- Evaluating spans against stored complete subtrees -----------------------------------------------------


class SubtreeSource(Protocol):
    """Where complete-subtree hashes come from (a dict, a database)."""

    def subtree_hashes(self, ids: Collection[NodeId]) -> Mapping[NodeId, bytes]:
        """The hashes of the complete subtrees ``ids`` that exist; missing ones are simply absent."""
        ...


def span_hashes(source: SubtreeSource, spans: Sequence[Span], *, also: Iterable[NodeId] = ()) -> list[bytes]:
    """The hashes of ``spans``, from one lookup of every complete subtree they need.

    ``also`` names subtrees that must exist too (a proven leaf). A missing subtree means the tree is smaller
    than the spans: TreeSizeError.
    """
    parts = [span_subtrees(start, end) for start, end in spans]
    wanted = {node for part in parts for node in part} | set(also)
    found = source.subtree_hashes(wanted)
    if len(found) != len(wanted):
        missing = min(wanted - set(found), key=lambda node: (node[1] + 1) << node[0])
        raise TreeSizeError(f"the tree does not reach leaf {((missing[1] + 1) << missing[0]) - 1}")
    return [fold_subtrees([found[node] for node in part]) for part in parts]


def tree_root(source: SubtreeSource, size: int) -> bytes:
    """MTH of the first ``size`` leaves."""
    if size < 0:
        raise TreeSizeError(f"no tree of size {size}")
    return EMPTY_ROOT if size == 0 else span_hashes(source, [(0, size)])[0]


def tree_inclusion_proof(source: SubtreeSource, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves."""
    # The leaf and the path partition [0, size): requiring the leaf too proves the tree reaches ``size``.
    return span_hashes(source, inclusion_spans(index, size), also=[(0, index)])


def tree_consistency_proof(source: SubtreeSource, first: int, second: int) -> list[bytes]:
    """The consistency proof between the trees of ``first`` and ``second`` leaves."""
    spans = consistency_spans(first, second)
    also = span_subtrees(0, second)[-1:] if second else []  # the tree must reach ``second``
    return span_hashes(source, spans, also=also)


# --- Trees --------------------------------------------------------------------------------------------------


class CompactRange:
    """The complete subtrees of the binary decomposition of ``size``: O(log n) memory, append and root.

    What a replay uses to recompute a root without storing the tree. :meth:`append_leaf_hash` also reports
    the complete subtrees each append completes, which is all a store needs to write.
    """

    def __init__(self) -> None:
        self.size = 0
        self._hashes: list[bytes] = []  # the decomposition's subtrees, largest (leftmost) first

    @classmethod
    def resume(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """A range of ``size`` leaves from the hashes of ``span_subtrees(0, size)``, in that order."""
        expected = bin(size).count("1") if size > 0 else 0
        if size < 0 or len(hashes) != expected:
            raise ValueError(f"a tree of {size} leaves has {expected} complete subtrees, not {len(hashes)}")
        made = cls()
        made.size = size
        made._hashes = list(hashes)
        return made

    def append(self, leaf_input: bytes) -> None:
        """Append one leaf."""
        self.append_leaf_hash(leaf_hash(leaf_input))

    def append_leaf_hash(self, hashed: bytes) -> list[tuple[NodeId, bytes]]:
        """Append a leaf by its leaf hash; the complete subtrees this completes, the leaf's own first."""
        index = self.size
        created: list[tuple[NodeId, bytes]] = [((0, index), hashed)]
        level = 0
        while index >> level & 1:  # the new node is a right child: its parent is complete now
            hashed = node_hash(self._hashes.pop(), hashed)
            level += 1
            created.append(((level, index >> level), hashed))
        self._hashes.append(hashed)
        self.size = index + 1
        return created

    def root(self) -> bytes:
        """MTH of every leaf appended so far."""
        return fold_subtrees(self._hashes)

    def subtrees(self) -> list[bytes]:
        """The hashes of ``span_subtrees(0, size)``, left to right."""
        return list(self._hashes)


class MemoryTree:
    """Every complete subtree in memory: roots and proofs at any size. For tests and small trees."""

    def __init__(self) -> None:
        self._range = CompactRange()
        self._levels: list[list[bytes]] = []  # _levels[level][index]

    @property
    def size(self) -> int:
        """How many leaves the tree has."""
        return self._range.size

    def append(self, leaf_input: bytes) -> int:
        """Append one leaf; its index."""
        index = self._range.size
        for (level, _), hashed in self._range.append_leaf_hash(leaf_hash(leaf_input)):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(hashed)
        return index

    def subtree_hashes(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        """The stored complete subtrees among ``ids``."""
        return {
            (level, index): self._levels[level][index]
            for level, index in ids
            if level < len(self._levels) and 0 <= index < len(self._levels[level])
        }

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default)."""
        return self._range.root() if size is None else tree_root(self, self._checked(size))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size])."""
        return tree_inclusion_proof(self, index, self._checked(size))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[second])."""
        return tree_consistency_proof(self, first, self._checked(second))

    def _checked(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise TreeSizeError(f"no tree of size {size}: the tree has {self.size} leaves")
        return size


# --- Verification (RFC 9162 2.1.3.2 and 2.1.4.2) -----------------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError("hash_length", f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_hashes(proof: Sequence[bytes], **roots: bytes) -> None:
    for what, root in roots.items():
        _check_hash(root, what)
    for position, element in enumerate(proof):
        _check_hash(element, f"proof[{position}]")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _shift_while_lsb_clear(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until LSB(fn) is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(leaf_input: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_input`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``.

    RFC 9162 2.1.3.2, with ``hash = leaf_hash(leaf_input)``. Raises ProofError.
    """
    _check_hashes(proof, root=root)
    # 1. leaf_index >= tree_size fails.
    if not 0 <= index < size:
        raise ProofError("wrong_size", f"leaf {index} is not in a tree of {size}")
    # 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
    fn, sn = index, size - 1
    r = leaf_hash(leaf_input)
    # 4. For each p in inclusion_path:
    for p in proof:
        if sn == 0:
            raise ProofError("proof_length", f"more hashes than the path of leaf {index} in a tree of {size} has")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_while_lsb_clear(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # 5. sn must be 0 and r the root.
    if sn != 0:
        raise ProofError("proof_length", f"{len(proof)} hashes are too few for leaf {index} of {size}")
    if not _same(r, root):
        raise ProofError("root_mismatch", f"the path of leaf {index} does not lead to the root of size {size}")


def _verify_trivial_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """``first`` is 0 or ``second``: the proof is empty, and the roots are the empty one or equal."""
    if proof:
        raise ProofError("proof_length", f"the proof from {first} to {second} is empty, not {len(proof)} hashes")
    if first == 0 and not _same(first_root, EMPTY_ROOT):
        raise ProofError("root_mismatch", "the first root is not the empty tree's")
    if first == second and not _same(first_root, second_root):
        raise ProofError("root_mismatch", f"two different roots for size {first}")


def _consistency_roots(first: int, second: int, path: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Steps 3 to 7 (sn) of RFC 9162 2.1.4.2: the roots ``fr`` and ``sr`` that ``path`` leads to."""
    # 3. fn = first - 1, sn = second - 1.  4. If LSB(fn) is set, shift both until it is not.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5. fr = sr = the first value.
    fr = sr = path[0]
    # 6. For each subsequent value c:
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof_length", f"more hashes than a proof from {first} to {second} has")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_lsb_clear(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # 7. (in part) sn must be 0.
    if sn != 0:
        raise ProofError("proof_length", f"too few hashes for a proof from {first} to {second}")
    return fr, sr


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """Check that the tree of ``second`` leaves (``second_root``) extends the one of ``first`` (``first_root``).

    RFC 9162 2.1.4.2 for ``0 < first < second``. At the edges: sizes must not shrink; ``first == second``
    needs equal roots and an empty proof; ``first == 0`` needs ``first_root == EMPTY_ROOT`` and an empty
    proof (every tree extends the empty one). Raises ProofError.
    """
    _check_hashes(proof, first_root=first_root, second_root=second_root)
    if not 0 <= first <= second:
        raise ProofError("wrong_size", f"a tree of {second} cannot extend one of {first}")
    if first in (0, second):
        _verify_trivial_consistency(first, second, proof, first_root, second_root)
        return
    # 1. An empty consistency_path fails.
    if not proof:
        raise ProofError("proof_length", f"the proof from {first} to {second} cannot be empty")
    # 2. If first is an exact power of 2, prepend first_hash.
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fr, sr = _consistency_roots(first, second, path)
    # 7. fr must be first_hash and sr second_hash.
    for size, computed, given in ((first, fr, first_root), (second, sr, second_root)):
        if not _same(computed, given):
            raise ProofError("root_mismatch", f"the proof does not lead to the root of size {size}")
