"""Whole-brain searchlight RSA (and encoding) with exact condition-label permutation inference.

For every centre voxel, the RDM of the patterns in the sphere around it is
compared (Spearman by default) with a network layer's RDM, per subject; the
group map is the mean over subjects. One set of condition-label permutations
of the layer's RDM is shared by all spheres and subjects, so one null gives
voxelwise p-values, max-statistic FWE p-values and cluster-mass FWE p-values.

How it is fast (measured in ``benchmarks/bench_searchlight.py``):

- Neighbourhoods come from one stencil of grid offsets (the voxels whose
  centre lies within ``radius`` mm), applied to every centre at once: a
  ``(n_centres, n_offsets)`` index array, no per-centre Python.
- A sphere's correlation-distance RDM is a batched Gram matrix over spheres:
  each condition's pattern in the sphere is centred and scaled to unit norm
  first (rsatoolbox's arithmetic), so the Gram matrix is the correlation
  matrix and only its upper triangle is read out (the spheres are padded with
  a row of zeros, kept zero by the centring).
- Spheres are handled in blocks of 16 (gathered voxel-major, so each voxel's
  patterns are one contiguous row), so the Gram matrices, RDMs and their sort
  keys stay near the caches; ranks come from one sort of 64-bit keys that
  carry the column index (no separate argsort), and a row without ties gets
  its centred unit-norm ranks in closed form, with scipy's ``rankdata`` only
  for rows with ties. Chunk buffers are reused (no page faults per chunk).
  Subjects run on ``n_jobs`` threads (NumPy releases the GIL in the gathers,
  products and sorts) and are summed in subject order. Measured: 1.5 -> 0.5
  -> 0.14 CPU ms per 93-voxel sphere at 112 conditions; what is left is the
  Gram matrix (~0.04 ms, near the core's float64 peak), the sort (~0.03 ms)
  and ~0.07 ms of gathers, centring, keys and the rank scatter.
- What permutations do not change is computed once per subject and sphere:
  the ranked, centred, unit-norm RDM vector. Permuting the conditions of the
  layer's RDM permutes the entries of its (equally embedded) vector, so the
  Spearman correlation of sphere ``v`` under permutation ``k`` is one dot
  product, and the group mean over subjects is the dot product with the
  subjects' *mean* embedded vector: the permutation cost does not grow with
  the number of subjects. A batch of permutations times a chunk of spheres is
  one matrix product.
- Spheres are processed in chunks (bounded memory); each chunk's
  permutations run through :func:`brainnet.permutation.permutation_test`
  (permutation ``k`` depends only on ``(seed, k)``, so chunks share the same
  permutations, threads and Dask give identical results, and each chunk
  resumes from its checkpoint).

The encoding statistic (:func:`searchlight_encoding`) scores a sphere by
cross-validated encoding of the layer into the sphere's mean response,
through :func:`brainnet.encode` (one target per centre); its group null is
the mean of the subjects' encode nulls under the same permutations, and the
maps below are computed from it by the same function as RSA's.

Why not rsatoolbox's searchlight: it builds one ``Dataset`` and one ``RDMs``
object per centre and evaluates models in a Python loop (its issues #213,
#214), and has no permutation maps; its values are the reference in the
tests (equal to within float64 rounding on the same neighbourhoods).

Cluster-mass inference: each map (observed and every permutation) is
standardised per centre by the mean and standard deviation of that centre's
values over the observed and all permuted maps (a function symmetric in the
``n_permutations + 1`` maps, so exchangeability and exactness are kept);
centres with ``z > isf(cluster_p)`` form clusters (26-connectivity); a
cluster's mass is the sum of its ``z``; the FWE p of an observed cluster is
the share of maps whose largest mass reaches it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet.errors import BrainnetError

__all__ = [
    "SEARCHLIGHT_COMPARISONS",
    "SEARCHLIGHT_STATISTICS",
    "sphere_neighbourhoods",
    "searchlight_rdms",
    "searchlight_rsa",
    "searchlight_encoding",
    "SearchlightResult",
    "searchlight_group",
]

#: Comparisons with a batched embedding (rows whose dot products are the similarity).
SEARCHLIGHT_COMPARISONS = ("spearman", "pearson", "cosine")
#: What a sphere is scored by: its RDM against the layer's (RSA), or cross-validated encoding of its mean response.
SEARCHLIGHT_STATISTICS = ("rsa", "encoding")

_DEFAULT_CHUNK = 2048


# --------------------------------------------------------------------------- neighbourhoods


def _stencil(radius: float, voxel_size: np.ndarray) -> np.ndarray:
    """Integer offsets ``(n_offsets, 3)`` whose distance in mm is <= radius, centre first."""
    reach = np.floor(radius / voxel_size + 1e-9).astype(int)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1)
    dist = np.sqrt(((offsets * voxel_size) ** 2).sum(axis=1))
    offsets = offsets[dist <= radius + 1e-9]
    return offsets[np.argsort(np.abs(offsets).sum(axis=1), kind="stable")]


def sphere_neighbourhoods(
    voxel_ijk: np.ndarray, radius: float, voxel_size: Sequence[float] = (1.0, 1.0, 1.0)
) -> np.ndarray:
    """The voxels within ``radius`` of every voxel of a mask.

    Parameters
    ----------
    voxel_ijk : ndarray of shape (n_voxels, 3), int
        Grid indices of the mask's voxels (the columns of the patterns).
    radius : float
        Sphere radius in the unit of ``voxel_size`` (mm with the image's voxel
        sizes; voxels with the default ``(1, 1, 1)``). A voxel belongs to a
        sphere when its centre is at distance ``<= radius``; spheres are
        truncated at the mask boundary.
    voxel_size : sequence of 3 float

    Returns
    -------
    ndarray of shape (n_voxels, n_offsets), int32
        Row ``v``: the columns of the voxels in the sphere centred on voxel
        ``v`` (itself first), padded with ``n_voxels`` (no voxel).
    """
    ijk = np.asarray(voxel_ijk, dtype=np.int64)
    if ijk.ndim != 2 or ijk.shape[1] != 3 or ijk.shape[0] == 0:
        raise BrainnetError(f"voxel_ijk has shape {ijk.shape}; give (n_voxels, 3) grid indices")
    size = np.asarray(voxel_size, dtype=np.float64)
    if not radius > 0:
        raise BrainnetError(f"radius={radius:g}: a sphere needs a positive radius; give e.g. radius=2")
    offsets = _stencil(float(radius), size)
    reach = np.abs(offsets).max(axis=0)
    lo = ijk.min(axis=0) - reach
    shape = ijk.max(axis=0) + reach - lo + 1
    # -1 outside the mask; the padding of ``reach`` keeps every offset inside the volume
    lookup = np.full(tuple(shape), -1, dtype=np.int32)
    shifted = ijk - lo
    n = ijk.shape[0]
    lookup[tuple(shifted.T)] = np.arange(n, dtype=np.int32)
    out = np.empty((n, offsets.shape[0]), dtype=np.int32)
    for start in range(0, n, 65536):
        block = shifted[start : start + 65536]
        pos = block[:, None, :] + offsets[None, :, :]
        out[start : start + len(block)] = lookup[pos[..., 0], pos[..., 1], pos[..., 2]]
    out[out < 0] = n
    return out


# --------------------------------------------------------------------------- sphere RDMs


def _padded(patterns: np.ndarray, dtype) -> np.ndarray:
    """Patterns ``(n_conditions, n_voxels + 1)`` with a zero column for the padding index."""
    out = np.zeros((patterns.shape[0], patterns.shape[1] + 1), dtype=dtype)
    out[:, :-1] = patterns
    return out


# spheres per inner block of ``_chunk_rdms`` / ``_chunk_embedding``: the block's gathered patterns,
# Gram matrices, RDMs and sort keys (~0.3 MB per sphere at 112 conditions and 93 voxels) stay near
# the caches; whole chunks of 2,048 spheres made the same arithmetic 3-4x slower (bench_searchlight)
_RDM_BLOCK = 16


def _upper_flat(n_cond: int) -> np.ndarray:
    """Flat indices of the upper triangle (row-major) of an ``(n_cond, n_cond)`` matrix."""
    iu, ju = np.triu_indices(n_cond, 1)
    return iu * n_cond + ju


def _block_rdms(padded_t: np.ndarray, nb: np.ndarray, flat: np.ndarray, out: np.ndarray) -> None:
    """Correlation-distance RDMs of a few spheres into ``out`` ``(n_block, n_pairs)``.

    Each condition's pattern in a sphere is centred over the sphere's voxels and scaled to unit
    norm (the padding rows stay zero), so one batched Gram matrix is the correlation matrix
    (as ``rsatoolbox.rdm.calc_rdm(method="correlation")`` computes it).
    """
    n_vox = padded_t.shape[0] - 1
    real = nb < n_vox  # (B, K)
    g = padded_t[nb]  # (B, K, n_cond); padding rows are zeros
    mean = g.sum(axis=1)
    mean /= real.sum(axis=1)[:, None]
    g -= mean[:, None, :]
    g[~real] = 0.0  # padding rows back to zero
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = 1.0 / np.sqrt(np.einsum("bkc,bkc->bc", g, g))  # inf for a constant pattern: NaN below
    g *= scale[:, None, :]
    gram = np.matmul(g.transpose(0, 2, 1), g).reshape(len(nb), -1)  # (B, n_cond**2) correlations
    np.subtract(1.0, np.take(gram, flat, axis=1), out=out)


def _chunk_rdms(padded: np.ndarray, neighbours: np.ndarray, padded_t: np.ndarray | None = None) -> np.ndarray:
    """Correlation-distance RDM vectors of a chunk of spheres, ``(n_chunk, n_pairs)``.

    ``padded_t`` is ``padded.T`` made contiguous (voxel-major, so a sphere's gather reads
    whole rows); computed here when not given.
    """
    n_cond = padded.shape[0]
    if padded_t is None:
        padded_t = np.ascontiguousarray(padded.T)
    flat = _upper_flat(n_cond)
    out = np.empty((neighbours.shape[0], flat.size), dtype=padded.dtype)
    for s in range(0, neighbours.shape[0], _RDM_BLOCK):
        nb = neighbours[s : s + _RDM_BLOCK]
        _block_rdms(padded_t, nb, flat, out[s : s + len(nb)])
    return out


def searchlight_rdms(
    patterns: np.ndarray, neighbours: np.ndarray, *, chunk_size: int = _DEFAULT_CHUNK
) -> np.ndarray:
    """Correlation-distance RDM of every sphere.

    Parameters
    ----------
    patterns : ndarray of shape (n_conditions, n_voxels)
        One (repeat-averaged) pattern per condition.
    neighbours : ndarray of shape (n_centres, n_offsets), int
        From :func:`sphere_neighbourhoods` (padding value ``n_voxels``).
    chunk_size : int

    Returns
    -------
    ndarray of shape (n_centres, n_conditions * (n_conditions - 1) / 2)
        Upper triangles, row-major (rsatoolbox's order); equal to
        ``rsatoolbox.util.searchlight.get_searchlight_RDMs`` with
        ``method="correlation"`` on the same neighbourhoods.
    """
    padded = _padded(np.asarray(patterns, dtype=np.float64), np.float64)
    nb = _checked_neighbours(neighbours, padded.shape[1] - 1)
    padded_t = np.ascontiguousarray(padded.T)
    return np.vstack(
        [_chunk_rdms(padded, nb[s : s + chunk_size], padded_t) for s in range(0, nb.shape[0], chunk_size)]
    )


def _checked_neighbours(neighbours: np.ndarray, n_voxels: int) -> np.ndarray:
    nb = np.asarray(neighbours)
    if nb.ndim != 2 or not np.issubdtype(nb.dtype, np.integer):
        raise BrainnetError(
            f"neighbours has shape {nb.shape} ({nb.dtype}); give (n_centres, n_offsets) voxel indices"
        )
    if nb.size and (nb.min() < 0 or nb.max() > n_voxels):
        raise BrainnetError(
            f"neighbours index voxels outside 0..{n_voxels}; build them with sphere_neighbourhoods"
        )
    return nb


# --------------------------------------------------------------------------- embeddings


def _checked_patterns(patterns) -> list[np.ndarray]:
    stack = [np.asarray(p, dtype=np.float64) for p in patterns]
    if not stack or any(p.ndim != 2 or p.shape != stack[0].shape for p in stack):
        raise BrainnetError(
            "patterns: give one (n_conditions, n_voxels) array per subject, all of the same shape"
        )
    return stack


def _checked_grid(neighbours, voxel_ijk, n_vox: int, n_subjects: int, subjects, shape, cluster_p: float,
                  alpha: float, n_permutations: int):
    """Neighbours, voxel indices, subject labels and grid shape of a searchlight, validated."""
    from brainnet._checks import check_count

    if n_vox < 1:
        raise BrainnetError("patterns have no voxels; give at least one voxel (column) per subject")
    nb = _checked_neighbours(neighbours, n_vox)
    ijk = np.asarray(voxel_ijk, dtype=np.int64)
    if ijk.shape != (n_vox, 3) or nb.shape[0] != n_vox:
        raise BrainnetError(
            f"voxel_ijk has shape {ijk.shape} and neighbours {nb.shape[0]} rows; give one of each per voxel ({n_vox})"
        )
    if not 0 < cluster_p < 1 or not 0 < alpha < 1:
        raise BrainnetError(f"cluster_p={cluster_p}, alpha={alpha}: give probabilities between 0 and 1")
    check_count(n_permutations, "n_permutations", 0)
    labels = [str(s) for s in (subjects if subjects is not None else range(1, n_subjects + 1))]
    if len(labels) != n_subjects:
        raise BrainnetError(f"subjects has {len(labels)} labels for {n_subjects} subjects' patterns; "
                            "give one label per subject, in the patterns' order")
    grid_shape = tuple(int(s) for s in shape) if shape is not None else tuple(int(v) + 1 for v in ijk.max(axis=0))
    return nb, ijk, labels, grid_shape


def _rank_order(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorting order along rows ``(n_rows, width)`` and which rows it may not rank exactly ``(n_rows,)``.

    The order comes from one sort of 64-bit keys (the float's order-preserving bit pattern
    with its low bits replaced by the column index), one plain ``np.sort`` which
    carries the argsort with it: 0.03 vs 0.07 CPU ms per 6,216-entry row for ``np.argsort``
    (bench_searchlight's sizes, AVX-512 sorts). Rows where the truncated keys could misorder two values, or
    with ties, are flagged (they need scipy's ``rankdata``). Rows must be finite.
    """
    width = vectors.shape[1]
    bits = max(int(width - 1).bit_length(), 1)
    low = np.int64((1 << bits) - 1)
    # + 0.0 turns -0.0 into 0.0, so equal values have equal bit patterns
    keys = (np.asarray(vectors, dtype=np.float64) + 0.0).view(np.int64)
    negative = keys < 0
    if negative.any():  # order-preserving for negative floats (RDMs rarely have any)
        keys = np.where(negative, keys ^ np.int64(0x7FFFFFFFFFFFFFFF), keys)
    keys &= ~low
    keys |= np.arange(width, dtype=np.int64)
    keys.sort(axis=1)
    order = keys & low
    # strictly increasing truncated keys imply strictly increasing values (the map is monotone);
    # equal ones flag ties or pairs the truncation may have misordered
    keys >>= bits
    inexact = np.any(keys[:, 1:] == keys[:, :-1], axis=1)
    return order, inexact


def _scatter_rows(order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``out[i, order[i, k]] = values[k]``, ``(n_rows, width)`` float64."""
    n_rows, width = order.shape
    out = np.empty((n_rows, width))
    order += (np.arange(n_rows, dtype=np.int64) * width)[:, None]
    out.ravel()[order.ravel()] = np.broadcast_to(values, order.shape).ravel()
    return out


def _ranks(vectors: np.ndarray) -> np.ndarray:
    """Average ranks along rows (``scipy.stats.rankdata(axis=1)``), faster when rows have no ties.

    See :func:`_rank_order`; rows it flags are ranked by scipy. Rows must be finite.
    """
    from scipy.stats import rankdata

    if vectors.shape[1] == 0:
        return np.empty(vectors.shape, dtype=np.float64)
    order, inexact = _rank_order(vectors)
    ranks = _scatter_rows(order, np.arange(1, vectors.shape[1] + 1, dtype=np.float64))
    if inexact.any():  # ties or truncation-misordered pairs (rare with real data): scipy's exact ranks
        ranks[inexact] = rankdata(vectors[inexact], axis=1)
    return ranks


def _embed(vectors: np.ndarray, method: str) -> np.ndarray:
    """Rows whose dot products are ``method`` similarities (as ``brainnet.rsa.compare_rdms``).

    Rows with a non-finite entry (a sphere with a constant pattern) become NaN. For Spearman,
    a row without ties gets its centred unit-norm ranks directly: rank ``k`` (1-based) of
    ``w`` becomes ``(k - (w + 1) / 2) / sqrt(w (w**2 - 1) / 12)``.
    """
    bad = ~np.all(np.isfinite(vectors), axis=1)
    if bad.any():
        vectors = np.where(bad[:, None], 0.0, vectors)
    width = vectors.shape[1]
    if method == "spearman" and width > 1:
        from scipy.stats import rankdata

        order, inexact = _rank_order(vectors)
        positions = np.arange(1, width + 1, dtype=np.float64) - (width + 1) / 2
        positions /= np.sqrt(width * (width**2 - 1) / 12)
        out = _scatter_rows(order, positions)
        inexact &= ~bad
        if inexact.any():  # ties: scipy's average ranks, centred and scaled
            tied = rankdata(vectors[inexact], axis=1)
            tied -= tied.mean(axis=1, keepdims=True)
            norms = np.linalg.norm(tied, axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                tied /= norms
            tied[norms[:, 0] == 0] = np.nan
            out[inexact] = tied
        out[bad] = np.nan
        return out
    # a fresh array, changed in place below (fewer passes over the chunk)
    out = _ranks(vectors) if method == "spearman" else np.array(vectors, dtype=np.float64)
    if method in ("spearman", "pearson"):
        out -= out.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= norms
    out[bad | (norms[:, 0] == 0)] = np.nan
    return out


def _chunk_embedding(
    padded_t: np.ndarray, neighbours: np.ndarray, method: str, out: np.ndarray | None = None
) -> np.ndarray:
    """Embedded sphere RDMs (:func:`_embed` of :func:`_chunk_rdms`), ``(n_chunk, n_pairs)``.

    Computed in blocks of ``_RDM_BLOCK`` spheres, so the RDMs, their sort keys and ranks stay
    near the caches (bench_searchlight: ranking 2,048 rows at once cost 0.58 CPU ms per
    sphere, in blocks of 64 0.28; blocks of 8 to 64 time alike with the current kernels). ``out``, when given, is a float64 buffer of at least
    ``n_chunk`` rows (reused between chunks: a fresh 100 MB array per chunk costs its page
    faults); the result is a view of it.
    """
    n_cond = padded_t.shape[1]
    flat = _upper_flat(n_cond)
    if out is None or out.shape[0] < neighbours.shape[0]:
        out = np.empty((neighbours.shape[0], flat.size))
    out = out[: neighbours.shape[0]]
    rdms = np.empty((min(_RDM_BLOCK, neighbours.shape[0]), flat.size))
    for s in range(0, neighbours.shape[0], _RDM_BLOCK):
        block = neighbours[s : s + _RDM_BLOCK]
        _block_rdms(padded_t, block, flat, rdms[: len(block)])
        out[s : s + len(block)] = _embed(rdms[: len(block)], method)
    return out


def _check_compare(compare: str) -> str:
    from brainnet.rsa import _check_comparison

    method = _check_comparison(compare)
    if method not in SEARCHLIGHT_COMPARISONS:
        raise BrainnetError(
            f"compare={compare!r}: searchlight RSA supports {', '.join(SEARCHLIGHT_COMPARISONS)}"
        )
    return method


# --------------------------------------------------------------------------- clusters


def _z_maps(observed: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-centre standardisation over the observed and all permuted maps."""
    total = null.sum(axis=0, dtype=np.float64) + observed
    count = null.shape[0] + 1
    mean = total / count
    sq = np.einsum("pv,pv->v", null, null, dtype=np.float64) + observed**2
    sd = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    sd[sd == 0] = np.inf
    return (observed - mean) / sd, ((null - mean) / sd).astype(np.float32)


def _cluster_labels(values: np.ndarray, ijk: np.ndarray, shape: tuple[int, ...], threshold: float):
    """Clusters (26-connected) of centres with ``values > threshold``: labels per centre, masses."""
    from scipy import ndimage

    above = np.nan_to_num(values, nan=-np.inf) > threshold
    vol = np.zeros(shape, dtype=bool)
    vol[tuple(ijk[above].T)] = True
    labels, n = ndimage.label(vol, structure=np.ones((3, 3, 3), dtype=bool))
    per_centre = labels[tuple(ijk.T)]
    if n == 0:
        return per_centre, np.zeros(0)
    masses = np.bincount(per_centre, weights=np.where(above, values, 0.0), minlength=n + 1)[1:]
    return per_centre, masses


def _cluster_inference(observed, null, ijk, shape, cluster_p: float):
    from scipy.stats import norm

    threshold = float(norm.isf(cluster_p))
    # label on the bounding box of the centres only (same clusters, far less volume to scan)
    ijk = ijk - ijk.min(axis=0)
    shape = tuple(int(s) for s in ijk.max(axis=0) + 1)
    z_obs, z_null = _z_maps(observed, null)
    labels, masses = _cluster_labels(z_obs, ijk, shape, threshold)
    null_max = np.zeros(null.shape[0])
    for k in range(null.shape[0]):
        _, m = _cluster_labels(z_null[k], ijk, shape, threshold)
        null_max[k] = m.max() if m.size else 0.0
    ordered = np.sort(null_max)
    cluster_p_fwe = (1.0 + ordered.size - np.searchsorted(ordered, masses, side="left")) / (1.0 + ordered.size)
    per_centre = np.ones(observed.shape)
    inside = labels > 0
    per_centre[inside] = cluster_p_fwe[labels[inside] - 1]
    return labels, masses, cluster_p_fwe, per_centre, null_max, threshold


# --------------------------------------------------------------------------- result record


_MAPS = ("r", "p", "p_fwe", "cluster_p_fwe", "cluster")


@dataclass
class SearchlightResult:
    """What :func:`searchlight_rsa` / :func:`searchlight_group` found.

    Attributes
    ----------
    summary : dict
        Headline numbers (the content of ``summary.json`` without provenance).
    table : pandas.DataFrame
        One row per cluster: cluster, n_centres, mass, p_fwe (cluster-mass),
        peak_r, peak_p_fwe (voxelwise), peak i/j/k, peak x/y/z (mm), region.
    maps : dict of str -> ndarray of shape (n_centres,)
        ``r`` (group mean: the RDM comparison for RSA, the per-fold encoding r
        for encoding; ``summary["statistic"]`` says which), ``p``, ``p_fwe``
        (max statistic; NaN where ``r`` is NaN), ``cluster_p_fwe`` (each
        centre's cluster; 1 outside clusters), ``cluster`` (label, 0 = none).
    subject_r : ndarray of shape (n_subjects, n_centres)
    voxel_ijk : ndarray of shape (n_centres, 3)
    null_max : ndarray of shape (n_permutations,)
        Largest group r of each permuted map (the max-statistic null).
    null_mass : ndarray of shape (n_permutations,)
        Largest cluster mass of each permuted map.
    affine : ndarray of shape (4, 4), optional
    shape : tuple of 3 int, optional
    subjects : list of str
    provenance : dict
    path : Path or None
    """

    summary: dict[str, Any]
    table: Any
    maps: dict[str, np.ndarray]
    subject_r: np.ndarray
    voxel_ijk: np.ndarray
    null_max: np.ndarray
    null_mass: np.ndarray
    affine: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    subjects: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"SearchlightResult({s.get('layer', '?')}: {s.get('n_centres')} centres, "
            f"{s.get('n_subjects')} subjects, peak r={s.get('peak_r', float('nan')):.3f}, "
            f"{s.get('n_centres_p_fwe_05')} centres p_FWE<.05, {s.get('n_clusters_p_fwe_05')} clusters)"
        )

    def image(self, name: str = "r"):
        """The map ``name`` (one of ``r, p, p_fwe, cluster_p_fwe, cluster``) as a NIfTI image."""
        import nibabel as nib

        if self.affine is None or self.shape is None:
            raise BrainnetError("this result has no image grid; pass affine= and shape= to searchlight_rsa")
        if name not in self.maps:
            raise BrainnetError(f"map {name!r} is unknown; use one of {', '.join(_MAPS)}")
        fill = 1.0 if name in ("p", "p_fwe", "cluster_p_fwe") else 0.0
        dtype = np.int16 if name == "cluster" else np.float32
        vol = np.full(tuple(self.shape), fill, dtype=dtype)
        vol[tuple(self.voxel_ijk.T)] = np.nan_to_num(self.maps[name], nan=fill).astype(dtype)
        return nib.Nifti1Image(vol, self.affine)

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the maps (NIfTI and ``maps.npz``), ``clusters.tsv``, the nulls and ``summary.json``."""
        import pandas as pd

        from brainnet.results import ResultDir

        rd = ResultDir(folder, self.provenance, overwrite=overwrite)
        arrays = {f"map_{k}": v for k, v in self.maps.items()}
        rd.write_npz(
            "maps.npz", voxel_ijk=self.voxel_ijk, subject_r=self.subject_r.astype(np.float32),
            subjects=np.asarray(self.subjects, dtype=str), null_max=self.null_max,
            null_mass=self.null_mass, affine=np.asarray(self.affine if self.affine is not None else np.eye(4)),
            shape=np.asarray(self.shape if self.shape is not None else (0, 0, 0)), **arrays,
        )
        if self.affine is not None and self.shape is not None:
            for name in _MAPS:
                rd.write_nifti(f"{name}_map.nii.gz", self.image(name))
        rd.write_tsv("clusters.tsv", self.table)
        rd.write_tsv("null.tsv", pd.DataFrame({"max_r": self.null_max, "max_cluster_mass": self.null_mass}))
        rd.write_tsv(
            "subjects.tsv",
            pd.DataFrame({"subject": self.subjects, "peak_r": np.nanmax(self.subject_r, axis=1),
                          "mean_r": np.nanmean(self.subject_r, axis=1)}),
        )
        _write_figures(self, rd.path)
        rd.finish(self.summary)
        self.path = rd.path
        return rd.path

    @classmethod
    def read(cls, folder: str | Path) -> SearchlightResult:
        """Load a result written by :meth:`write`."""
        import pandas as pd

        from brainnet.results import read_json

        folder = Path(folder)
        summary = read_json(folder / "summary.json")
        if not summary.get("complete"):
            raise BrainnetError(f"{folder}: no complete searchlight result; rerun the analysis")
        with np.load(folder / "maps.npz", allow_pickle=False) as data:
            maps = {k[4:]: data[k] for k in data.files if k.startswith("map_")}
            shape = tuple(int(v) for v in data["shape"])
            res = cls(
                summary={k: v for k, v in summary.items() if k not in ("provenance", "fingerprint", "complete")},
                table=pd.read_csv(folder / "clusters.tsv", sep="\t", na_values=["n/a"]),
                maps=maps, subject_r=data["subject_r"].astype(np.float64), voxel_ijk=data["voxel_ijk"],
                null_max=data["null_max"], null_mass=data["null_mass"], affine=data["affine"],
                shape=shape if any(shape) else None, subjects=[str(s) for s in data["subjects"]],
                provenance=summary.get("provenance", {}), path=folder,
            )
        return res


# --------------------------------------------------------------------------- array core


def searchlight_rsa(
    patterns: Sequence[np.ndarray] | np.ndarray,
    model_rdm: np.ndarray,
    neighbours: np.ndarray,
    *,
    voxel_ijk: np.ndarray,
    compare: str = "spearman",
    n_permutations: int = 1000,
    cluster_p: float = 0.001,
    alpha: float = 0.05,
    seed: int = 0,
    subjects: Sequence[str] | None = None,
    affine: np.ndarray | None = None,
    shape: tuple[int, ...] | None = None,
    chunk_size: int = _DEFAULT_CHUNK,
    batch_size: int = 64,
    n_jobs: int = 1,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchlightResult:
    """Searchlight RSA of several subjects on one voxel grid, with permutation maps.

    Parameters
    ----------
    patterns : sequence of ndarray of shape (n_conditions, n_voxels)
        One array per subject (or one 3-D array ``(n_subjects, n_conditions,
        n_voxels)``): condition patterns in the same condition order, on the
        same voxels (columns).
    model_rdm : ndarray of shape (n_conditions * (n_conditions - 1) / 2,)
        The layer's RDM (upper triangle, row-major).
    neighbours : ndarray of shape (n_centres, n_offsets), int
        From :func:`sphere_neighbourhoods`; one centre per voxel, in column order.
    voxel_ijk : ndarray of shape (n_voxels, 3)
        Grid indices of the voxels (cluster connectivity and images).
    compare : {"spearman", "pearson", "cosine"}
        RDM comparison (rsatoolbox's ``spearman``, ``corr``, ``cosine``).
    n_permutations : int
        Condition-label permutations of the model RDM, shared by all spheres
        and subjects (0: maps of r only).
    cluster_p : float
        Cluster-forming threshold, as the upper-tail normal probability of
        the per-centre standardised statistic (see the module docstring).
    alpha : float
        Level used in the summary counts and the cluster table.
    seed : int
    subjects : sequence of str, optional
    affine, shape : optional
        The voxel grid, for images and mm coordinates.
    chunk_size : int
        Spheres per chunk (memory: about ``chunk_size * n_pairs * 8 * 2`` bytes
        plus the ``(n_permutations, n_centres)`` float32 null).
    batch_size, n_jobs, progress
        Passed to the permutation engine (results do not depend on ``n_jobs``).
    checkpoint_dir : path, optional
        One resumable checkpoint per chunk.

    Returns
    -------
    SearchlightResult
    """
    from concurrent.futures import ThreadPoolExecutor

    from brainnet._checks import check_n_jobs
    from brainnet._threads import single_blas_thread
    from brainnet.permutation import permutation_test
    from brainnet.rsa import _n_from_pairs, _pair_permuter

    method = _check_compare(compare)
    stack = _checked_patterns(patterns)
    n_cond, n_vox = stack[0].shape
    model = np.asarray(model_rdm, dtype=np.float64).ravel()
    if _n_from_pairs(model.size) != n_cond:
        raise BrainnetError(
            f"model_rdm has {model.size} entries but the patterns have {n_cond} conditions; "
            "compute the RDM over the same conditions"
        )
    if n_cond < 4:
        raise BrainnetError(f"searchlight RSA needs at least 4 conditions, got {n_cond}")
    nb, ijk, labels, grid_shape = _checked_grid(
        neighbours, voxel_ijk, n_vox, len(stack), subjects, shape, cluster_p, alpha, n_permutations)
    m_emb = _embed(model[None], method)[0]
    if not np.all(np.isfinite(m_emb)):
        raise BrainnetError("model_rdm is constant; a constant RDM has no rank order to compare")
    # voxel-major padded patterns (n_voxels + 1, n_conditions): a sphere's gather reads whole rows
    padded = [np.ascontiguousarray(_padded(p, np.float64).T) for p in stack]
    gather = _pair_permuter(n_cond)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None

    check_n_jobs(n_jobs)
    n_threads = min((os.cpu_count() or 1) if n_jobs < 0 else n_jobs, len(stack))
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    subject_r = np.empty((len(stack), n_vox))
    observed = np.empty(n_vox)
    null = np.zeros((n_permutations, n_vox), dtype=np.float32)
    # without threads, one embedding buffer reused by every subject and chunk (a fresh 100 MB array per
    # chunk costs its page faults); with threads each subject's chunk is a fresh array (one persistent
    # buffer per subject would hold them all at once: 2.45 vs 1.47 GB peak in bench_searchlight)
    rows = min(chunk_size, n_vox)
    buffers = [None] * len(stack) if pool is not None else [np.empty((rows, m_emb.size))]
    mean_buffer = np.empty((rows, m_emb.size)) if len(stack) > 1 else None
    with pool if pool is not None else contextlib.nullcontext():
        for start in range(0, n_vox, chunk_size):
            stop = min(start + chunk_size, n_vox)
            # one BLAS thread: the per-sphere Gram matrices are small (n_conditions x sphere size), where
            # BLAS threads only spin (bench_searchlight: 5.8 -> 1.7 CPU ms per centre on the busy machine);
            # subjects run on n_jobs threads instead (NumPy's sort, gather and products release the GIL)
            # and are summed in subject order, so results do not depend on n_jobs
            with single_blas_thread():
                embeddings = (
                    pool.map(lambda pad, buf, sl=slice(start, stop): _chunk_embedding(pad, nb[sl], method, buf),
                             padded, buffers)
                    if pool is not None
                    else (_chunk_embedding(pad, nb[start:stop], method, buffers[0]) for pad in padded)
                )
                if mean_buffer is None:  # one subject: its embedding is the mean
                    mean_emb = next(iter(embeddings))
                    subject_r[0, start:stop] = mean_emb @ m_emb
                else:
                    mean_emb = mean_buffer[: stop - start]
                    mean_emb[...] = 0.0
                    for s, emb in enumerate(embeddings):
                        subject_r[s, start:stop] = emb @ m_emb
                        mean_emb += emb
                    mean_emb /= len(stack)
            # a row is all NaN (a subject's sphere without an RDM) or all finite
            valid = np.isfinite(mean_emb[:, 0])
            mean_emb[~valid] = 0.0
            observed[start:stop] = (subject_r[0, start:stop] if mean_buffer is None
                                    else np.where(valid, mean_emb @ m_emb, np.nan))
            if n_permutations == 0:
                continue

            def statistic(perms: np.ndarray, mean_emb=mean_emb, valid=valid) -> np.ndarray:
                out = m_emb[gather(perms)] @ mean_emb.T  # (n_batch, n_chunk)
                out[:, ~valid] = np.nan
                return out

            res = permutation_test(
                statistic, n_cond, n_permutations=n_permutations, seed=seed, batch_size=batch_size,
                n_jobs=n_jobs, progress=progress,
                checkpoint=ckpt / f"searchlight-chunk{start:08d}.npz" if ckpt is not None else None,
            )
            null[:, start:stop] = res.null
    head = {"analysis": "searchlight", "statistic": "rsa", "compare": method, "n_subjects": len(stack),
            "n_conditions": n_cond, "n_centres": n_vox}
    return _group_result(head, observed, null, subject_r, nb, ijk, grid_shape, labels, affine,
                         n_permutations=n_permutations, seed=seed, cluster_p=cluster_p, alpha=alpha)


def _sphere_mean_operator(neighbours: np.ndarray, n_vox: int):
    """Sparse ``(n_voxels, n_centres)`` matrix whose column ``c`` averages the voxels of sphere ``c``."""
    from scipy import sparse

    inside = neighbours < n_vox
    counts = inside.sum(axis=1)
    centres = np.broadcast_to(np.arange(neighbours.shape[0])[:, None], neighbours.shape)[inside]
    weights = (1.0 / counts)[centres]
    return sparse.csc_matrix((weights, (neighbours[inside], centres)), shape=(n_vox, neighbours.shape[0]))


def searchlight_encoding(
    patterns: Sequence[np.ndarray] | np.ndarray,
    features: np.ndarray,
    neighbours: np.ndarray,
    *,
    voxel_ijk: np.ndarray,
    model: str = "ridge",
    cv: int = 5,
    alphas: Sequence[float] | None = None,
    n_permutations: int = 1000,
    cluster_p: float = 0.001,
    alpha: float = 0.05,
    seed: int = 0,
    subjects: Sequence[str] | None = None,
    affine: np.ndarray | None = None,
    shape: tuple[int, ...] | None = None,
    n_jobs: int = 1,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> SearchlightResult:
    """Searchlight encoding: the layer cross-validated into each sphere's mean response, with permutation maps.

    For every subject, each sphere's mean pattern over its voxels (one value
    per condition) is a target of :func:`brainnet.encode` (the same folds,
    penalty choice and per-fold r); the group map is the mean over subjects
    of the per-fold r. Permutation ``k`` re-pairs the conditions with the
    features the same way in every subject and sphere (the engine's
    ``(seed, k)`` permutation, as in ``encode``) and refits every model, so
    the group null is the mean of the subjects' nulls and gives voxelwise,
    max-statistic FWE and cluster-mass FWE maps exactly as for searchlight RSA.

    A sphere's mean keeps what its voxels share and loses the pattern across
    them (voxels well predicted with opposite signs average out): it asks
    "does the region's mean response follow the layer", not the multivariate
    question of the RSA searchlight. Stimuli are permuted, so the group map
    generalises to new stimuli for these subjects (fixed effects over
    subjects), as for RSA.

    Cost: one ``encode`` per subject with one target per centre, about as
    much as encoding that many voxels (measured 16-35 CPU us per centre,
    subject and fit: a region takes minutes, a whole brain of 235,000 centres
    with 1,000 permutations 1-2.3 CPU hours per subject). Memory holds two
    float64 ``(n_permutations, n_centres)`` nulls (the group sum and the
    current subject's) plus ``encode``'s workspace.

    Parameters
    ----------
    patterns : sequence of ndarray of shape (n_conditions, n_voxels)
        One array per subject, same conditions and voxels (columns).
    features : ndarray of shape (n_conditions, n_units)
        The layer's activations, rows in the patterns' condition order.
    neighbours : ndarray of shape (n_centres, n_offsets), int
        From :func:`sphere_neighbourhoods`.
    voxel_ijk : ndarray of shape (n_voxels, 3)
    model, cv, alphas
        Passed to :func:`brainnet.encode`.
    n_permutations, cluster_p, alpha, seed, subjects, affine, shape
        As in :func:`searchlight_rsa`.
    n_jobs, progress
        Passed to :func:`brainnet.encode` (results do not depend on ``n_jobs``).
    checkpoint_dir : path, optional
        One resumable checkpoint per subject.

    Returns
    -------
    SearchlightResult
        ``maps["r"]`` is the group mean per-fold encoding r; ``subject_r`` each
        subject's.
    """
    from brainnet.encoding import encode

    stack = _checked_patterns(patterns)
    n_cond, n_vox = stack[0].shape
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != n_cond:
        raise BrainnetError(
            f"features have shape {x.shape} but the patterns have {n_cond} conditions; "
            "give one feature row per condition, in the patterns' order"
        )
    if not np.all(np.isfinite(x)) or not np.any(np.ptp(x, axis=0) > 0):
        raise BrainnetError("features hold NaN/Inf or no unit that varies across conditions; "
                            "give finite activations of a layer with at least one varying unit")
    bad = [i for i, p in enumerate(stack) if not np.all(np.isfinite(p))]
    if bad:  # one subject's NaN would silently remove every sphere containing that voxel from the group map
        raise BrainnetError(f"patterns of subject {bad[0] + 1} hold NaN or Inf; "
                            "drop those voxels (columns) from every subject first")
    nb, ijk, labels, grid_shape = _checked_grid(
        neighbours, voxel_ijk, n_vox, len(stack), subjects, shape, cluster_p, alpha, n_permutations)
    to_means = _sphere_mean_operator(nb, n_vox)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    subject_r = np.empty((len(stack), n_vox))
    null = np.zeros((n_permutations, n_vox))
    for s, pat in enumerate(stack):
        means = np.asarray(to_means.T @ pat.T).T  # (n_conditions, n_centres)
        res = encode(x, means, model=model, cv=cv, alphas=alphas, n_permutations=n_permutations, seed=seed,
                     n_jobs=n_jobs, progress=progress,
                     checkpoint=ckpt / f"searchlight-encode-subject{s:03d}.npz" if ckpt is not None else None)
        subject_r[s] = res.voxel_scores["r"].to_numpy()
        null += res.null
    null /= len(stack)
    head = {"analysis": "searchlight", "statistic": "encoding", "model": model, "cv": int(cv),
            "r_definition": "per-fold r of the sphere's mean response, cross-validated encoding, averaged over folds",
            "n_subjects": len(stack), "n_conditions": n_cond, "n_units": int(x.shape[1]), "n_centres": n_vox}
    return _group_result(head, subject_r.mean(axis=0), null, subject_r, nb, ijk, grid_shape, labels, affine,
                         n_permutations=n_permutations, seed=seed, cluster_p=cluster_p, alpha=alpha)


def _group_result(head, observed, null, subject_r, nb, ijk, grid_shape, labels, affine, *,
                  n_permutations: int, seed: int, cluster_p: float, alpha: float) -> SearchlightResult:
    """Voxelwise, max-statistic and cluster-mass maps, the cluster table and the summary of a group map.

    Shared by every searchlight statistic: ``observed`` (n_centres,) and ``null``
    (n_permutations, n_centres) are group maps under the same permutations; ``nb`` the
    spheres (padding index ``n_centres``).
    """
    import pandas as pd

    from brainnet.permutation import max_stat_p_values, p_values

    n_vox = observed.size
    maps: dict[str, np.ndarray] = {"r": observed}
    if n_permutations > 0:
        # a centre without a value (a sphere without an RDM or r) has no p: nothing "exceeds" NaN
        valid = np.isfinite(observed)
        maps["p"] = np.where(valid, p_values(observed, null), np.nan)
        maps["p_fwe"] = np.where(valid, max_stat_p_values(observed, null), np.nan)
        clusters, masses, cl_p, per_centre, null_mass, z_thr = _cluster_inference(
            observed, null, ijk, grid_shape, cluster_p
        )
        null_max = np.nanmax(null, axis=1) if n_vox else np.zeros(n_permutations)
    else:
        nan = np.full(n_vox, np.nan)
        maps["p"], maps["p_fwe"] = nan, nan.copy()
        clusters, masses, cl_p, per_centre = np.zeros(n_vox, int), np.zeros(0), np.zeros(0), nan.copy()
        null_mass = null_max = np.zeros(0)
        z_thr = float("nan")
    maps["cluster_p_fwe"] = per_centre
    maps["cluster"] = clusters.astype(np.int32)
    table = _cluster_table(maps, masses, cl_p, ijk, affine)
    peak = int(np.nanargmax(observed)) if np.any(np.isfinite(observed)) else 0
    summary = {
        **head,
        "mean_sphere_voxels": float(np.mean((nb < n_vox).sum(axis=1))),
        "n_permutations": int(n_permutations),
        "seed": seed,
        "cluster_p": cluster_p,
        "cluster_z_threshold": z_thr,
        "alpha": alpha,
        "peak_r": float(observed[peak]),
        "peak_ijk": ijk[peak].tolist(),
        "peak_p_fwe": float(maps["p_fwe"][peak]),
        "n_centres_p_fwe_05": int(np.sum(maps["p_fwe"] < alpha)),
        "n_clusters": int(masses.size),
        "n_clusters_p_fwe_05": int(np.sum(cl_p < alpha)),
        "n_centres_cluster_p_fwe_05": int(np.sum(per_centre < alpha)),
    }
    if not isinstance(table, pd.DataFrame):  # pragma: no cover - defensive
        table = pd.DataFrame(table)
    return SearchlightResult(
        summary=summary, table=table, maps=maps, subject_r=subject_r, voxel_ijk=ijk,
        null_max=null_max, null_mass=null_mass, affine=None if affine is None else np.asarray(affine),
        shape=grid_shape, subjects=labels,
    )


def _region_of(xyz: np.ndarray) -> list[str]:
    """Names of the shipped atlas regions (2 mm MNI152) containing each mm coordinate."""
    import nibabel as nib

    from brainnet.masks import MASKS, mask_path

    names = [""] * len(xyz)
    for key in MASKS:
        path = mask_path(key)
        if path is None:
            continue
        img = nib.load(str(path))
        data = np.asarray(img.dataobj) > 0
        vox = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), xyz)).astype(int)
        inside = np.all((vox >= 0) & (vox < np.array(data.shape)), axis=1)
        for row in np.flatnonzero(inside):
            if data[tuple(vox[row])]:
                names[row] = f"{names[row]},{key}" if names[row] else key
    return names


def _cluster_table(maps, masses, cluster_p_fwe, ijk, affine):
    """One row per cluster, sorted by mass, with its peak and the atlas regions at the peak."""
    import pandas as pd

    rows = []
    labels = maps["cluster"]
    for c in range(masses.size):
        members = np.flatnonzero(labels == c + 1)
        peak = members[np.nanargmax(maps["r"][members])]
        rows.append({"cluster": c + 1, "n_centres": members.size, "mass": masses[c],
                     "p_fwe": cluster_p_fwe[c], "peak_r": maps["r"][peak],
                     "peak_p_fwe": maps["p_fwe"][peak], "i": ijk[peak, 0], "j": ijk[peak, 1],
                     "k": ijk[peak, 2]})
    columns = ["cluster", "n_centres", "mass", "p_fwe", "peak_r", "peak_p_fwe", "i", "j", "k",
               "x", "y", "z", "region"]
    table = pd.DataFrame(rows, columns=columns[:9]).sort_values("mass", ascending=False, kind="stable")
    if affine is not None and len(table):
        import nibabel as nib

        xyz = nib.affines.apply_affine(np.asarray(affine), table[["i", "j", "k"]].to_numpy(float))
        table["x"], table["y"], table["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        table["region"] = _region_of(xyz)
    else:
        for col in ("x", "y", "z", "region"):
            table[col] = np.nan if col != "region" else ""
    return table.reset_index(drop=True)[columns]


# --------------------------------------------------------------------------- figures


def _write_figures(result: SearchlightResult, folder: Path) -> None:
    """``searchlight_r.png``: the group r map thresholded at FWE alpha, on the MNI template."""
    from brainnet.mapfigures import write_figures

    write_figures(result, folder)


# --------------------------------------------------------------------------- study level


def searchlight_group(
    study: Any = None,
    *,
    layer: str = "fc8",
    mask: str | Path = "whole-brain",
    radius: float = 6.0,
    subjects: Sequence[str] | None = None,
    statistic: str = "rsa",
    compare: str = "spearman",
    cv: int = 5,
    n_permutations: int = 1000,
    cluster_p: float = 0.001,
    alpha: float = 0.05,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    features_file: str | Path | None = None,
    seed: int = 0,
    chunk_size: int = _DEFAULT_CHUNK,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> SearchlightResult:
    """Whole-brain searchlight of a study against one network layer: RSA or encoding.

    Each subject's repeat-averaged patterns (stimuli every subject saw) in
    ``mask``, restricted to the voxels all subjects have, give per sphere of
    ``radius`` mm either a correlation-distance RDM compared with the layer's
    (``statistic="rsa"``, :func:`searchlight_rsa`) or a mean response the layer
    is cross-validated into (``statistic="encoding"``,
    :func:`searchlight_encoding`). With ``out``, writes
    ``<out>/group/searchlight-[encoding-]<layer>[-<region>]/`` (NIfTI maps ``r_map``, ``p_map``,
    ``p_fwe_map``, ``cluster_p_fwe_map``, ``cluster_map``; ``clusters.tsv``;
    ``null.tsv``; ``subjects.tsv``; ``maps.npz``; a figure; ``summary.json``).

    Parameters
    ----------
    study : Study, str or Path, optional
        Default: the embedded demo study. Subjects must share one voxel grid.
    layer : str
    mask : str or Path
        Region (default ``whole-brain``).
    radius : float
        Sphere radius in mm.
    subjects : sequence of str, optional
    statistic : {"rsa", "encoding"}
        What scores a sphere (see :data:`SEARCHLIGHT_STATISTICS`).
    compare, n_permutations, cluster_p, alpha, seed, chunk_size
        See :func:`searchlight_rsa` (``compare`` and ``chunk_size``: RSA only).
    cv : int
        Folds over stimuli (encoding only; see :func:`searchlight_encoding`).
    weights, untrained_seed, features_file
        Where the network's activations come from (see ``Study.features``).
    n_jobs, progress
    out : str or Path, optional
    overwrite : bool

    Returns
    -------
    SearchlightResult
    """
    from brainnet import runs
    from brainnet._checks import ParameterError, check_options
    from brainnet.errors import notice

    check_options(seed=seed, untrained_seed=untrained_seed, n_jobs=n_jobs, n_permutations=n_permutations)
    method = _check_compare(compare)
    if statistic not in SEARCHLIGHT_STATISTICS:
        raise ParameterError("statistic", statistic, "is not a searchlight statistic",
                             f"use one of {', '.join(SEARCHLIGHT_STATISTICS)}")
    if statistic == "encoding":
        check_options(cv=cv)
        if compare != "spearman":
            notice(f"compare={compare!r} is not used by the encoding searchlight (it compares RDMs); ignored")
    if not radius > 0:
        raise BrainnetError(f"--radius {radius:g}: a sphere needs a positive radius; give it in mm, e.g. --radius 6")
    study = runs.resolve_study(study)
    labels = runs.subject_labels(study, "all" if subjects is None else subjects)
    spec = _SearchlightSpec(layer, mask, seed, tuple(labels), float(radius), method, int(n_permutations),
                            cluster_p, alpha, chunk_size, statistic, int(cv))
    feats = study.features(layers=(layer,), weights=weights, seed=untrained_seed, features_file=features_file)
    runner = runs.Runner(spec, study, feats, out, overwrite, runs.Execution(n_jobs, progress))
    return runner.run_group(labels)


#: Centres above which the encoding searchlight warns about its cost (it refits per centre and permutation).
_LARGE_ENCODING = 20_000

#: The region a searchlight runs on unless told otherwise (not spelled out in its folder's name).
_DEFAULT_MASK = "whole-brain"


@dataclass(frozen=True)
class _SearchlightSpec:
    """The searchlight spec for :meth:`brainnet.runs.Runner.run_group`: every subject on one grid."""

    layer: str
    mask: Any
    seed: int
    subjects: tuple[str, ...]
    radius: float
    compare: str
    n_permutations: int
    cluster_p: float
    alpha: float
    chunk_size: int
    statistic: str = "rsa"
    cv: int = 5

    analysis = "searchlight"
    clean_on_refusal = True

    def folder_name(self) -> str:
        """``searchlight-[encoding-]<layer>[-<region>]``: the encoding statistic and a named region other
        than the whole brain are in the name."""
        from brainnet.runs import region_name

        region = region_name(self.mask)
        kind = "" if self.statistic == "rsa" else f"{self.statistic}-"
        return f"searchlight-{kind}{self.layer}" + (f"-{region}" if region not in (None, _DEFAULT_MASK) else "")

    def parameters(self, label: str) -> dict[str, Any]:
        scoring = ({"compare": self.compare, "rdm": "correlation"} if self.statistic == "rsa"
                   else {"statistic": self.statistic, "model": "ridge", "cv": self.cv})
        return {"layer": self.layer, "mask": str(self.mask), "radius_mm": self.radius, **scoring,
                "n_permutations": self.n_permutations, "cluster_p": self.cluster_p,
                "alpha": self.alpha, "subjects": list(self.subjects)}

    def prepare_group(self, study, labels, feats):
        """Every subject's repeat-averaged patterns on the voxels and stimuli all share, and the layer's RDM."""
        from brainnet.rsa import compute_rdm

        data = study.load_subjects(labels, mask=self.mask)
        affine, grid = _common_grid(study, data)
        keys = [np.ravel_multi_index(sd.voxel_ijk.T, grid) for sd in data]
        common_keys = keys[0][np.isin(keys[0], _intersect(keys))]  # in the first subject's column order
        ijk = np.stack(np.unravel_index(common_keys, grid), axis=1)
        present = set.intersection(*(set(sd.stimulus_ids.tolist()) for sd in data))
        common = [s for s in study.stimulus_ids if s in present]
        if len(common) < 4:
            raise BrainnetError(f"only {len(common)} stimuli were seen by every subject; searchlight RSA needs at least 4")
        patterns = []
        for sd, key in zip(data, keys, strict=True):
            means, ids = sd.averaged()
            rows = [ids.index(s) for s in common]
            order = np.argsort(key)
            cols = order[np.searchsorted(key, common_keys, sorter=order)]
            patterns.append(means[np.ix_(rows, cols)])
        features = feats.layer(self.layer)[feats.rows_for(common)]
        model = compute_rdm(features, common, metric="correlation").vector if self.statistic == "rsa" else None
        voxel_size = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        inputs = {"patterns": patterns, "model": model, "features": features, "ijk": ijk, "affine": affine, "grid": grid,
                  "neighbours": sphere_neighbourhoods(ijk, self.radius, voxel_size)}
        extras = {"weights": dict(feats.provenance).get("weights"), "n_stimuli": len(common)}
        return inputs, extras, str(self.mask), {"n_voxels": int(ijk.shape[0])}

    def compute(self, inputs, n_jobs: int, checkpoint, progress: bool) -> SearchlightResult:
        if self.statistic == "encoding":
            from brainnet.errors import notice

            n_centres = int(inputs["ijk"].shape[0])
            if n_centres > _LARGE_ENCODING:
                notice(f"searchlight encoding of {n_centres} centres: each subject costs as much as encoding "
                       f"{n_centres} voxels with {self.n_permutations} permutations (roughly 0.5-1 CPU hour per subject per 100,000 "
                       "centres and 1,000 permutations); a region mask makes it faster")
            return searchlight_encoding(
                inputs["patterns"], inputs["features"], inputs["neighbours"], voxel_ijk=inputs["ijk"], cv=self.cv,
                n_permutations=self.n_permutations, cluster_p=self.cluster_p, alpha=self.alpha, seed=self.seed,
                subjects=list(self.subjects), affine=inputs["affine"], shape=inputs["grid"], n_jobs=n_jobs,
                checkpoint_dir=checkpoint, progress=progress,
            )
        return searchlight_rsa(
            inputs["patterns"], inputs["model"], inputs["neighbours"], voxel_ijk=inputs["ijk"], compare=self.compare,
            n_permutations=self.n_permutations, cluster_p=self.cluster_p, alpha=self.alpha, seed=self.seed,
            subjects=list(self.subjects), affine=inputs["affine"], shape=inputs["grid"], chunk_size=self.chunk_size,
            n_jobs=n_jobs, checkpoint_dir=checkpoint, progress=progress,
        )

    def finish(self, job, result: SearchlightResult) -> SearchlightResult:
        """Label the array-level result with its layer, region and provenance."""
        result.summary = {"analysis": "searchlight", "layer": self.layer, "mask": str(self.mask),
                          "radius_mm": self.radius, "weights": job.extras["weights"],
                          **{k: v for k, v in result.summary.items() if k != "analysis"}}
        result.provenance = job.provenance
        return result

    def write(self, result: SearchlightResult, folder, job) -> None:
        result.write(folder.path)


def _common_grid(study, data) -> tuple[np.ndarray, tuple[int, ...]]:
    """The voxel grid every subject shares (refused for surface betas or subjects on other grids)."""
    if data[0].masker.mask_img_ is None:  # surface betas (brainnet.surfaces)
        raise BrainnetError(f"--study {study.root}: surface betas (vertices, no voxel grid); a searchlight needs volume betas: "
                            "run it on a volume study, or run encode, decode or rsa on the surface")
    affine = np.asarray(data[0].masker.mask_img_.affine)
    grid = tuple(int(s) for s in data[0].masker.mask_img_.shape[:3])
    for sd in data[1:]:
        if tuple(sd.masker.mask_img_.shape[:3]) != grid or not np.allclose(sd.masker.mask_img_.affine, affine):
            raise BrainnetError(
                f"subject {sd.subject} is on another voxel grid than subject {data[0].subject}; "
                "searchlight group maps need all subjects on one grid (resample the betas)"
            )
    return affine, grid


def _intersect(keys: list[np.ndarray]) -> np.ndarray:
    out = keys[0]
    for k in keys[1:]:
        out = np.intersect1d(out, k)
    return out
