"""Naturalistic (movie) encoding: frame features -> HRF -> voxels, with blocked cross-validation.

The NNDb-style workflow (Jang & Kragel 2024): features of every movie frame
``(n_frames, n_units)`` at a frame rate are convolved with a canonical HRF
and sampled at the BOLD acquisition times, giving a design ``(n_trs,
n_units)``; a ridge model per voxel predicts the BOLD time series, and the
prediction accuracy (Pearson r of out-of-fold predictions) is mapped.

Why blocked cross-validation: BOLD time series and HRF-convolved features
are strongly autocorrelated, so a volume and its neighbours a few seconds
away carry nearly the same signal. Random k-fold over volumes puts those
neighbours on both sides of the split and the model "predicts" test volumes
by interpolating training ones: accuracy is inflated even on pure noise
(``tests/test_naturalistic.py`` shows it). :class:`BlockedKFold` tests on
contiguous blocks and drops a gap of at least the HRF length (default 30 s)
on each side of the test block from the training set. scikit-learn's
``KFold(shuffle=False)`` has contiguous blocks but no gap, and
``TimeSeriesSplit(gap=...)`` trains only on the past, hence this small
splitter.

NNDb specifics handled here: subjects are ``sub-1`` … ``sub-86`` (not
zero-padded); the AFNI derivatives are
``derivatives/sub-<N>/func/sub-<N>_task-<film>_bold_blur_censor.nii.gz``;
volumes censored by AFNI are all-zero and are excluded from fitting and from
scoring (they stay in the timeline, so gaps are measured in real time).

Voxels are streamed in chunks of ``chunk_size`` so memory stays bounded: a
NIfTI is copied once, masked, into a float32 ``.npy`` memory map (voxels x
time) and every chunk is read from it; chunks run one after another or as
tasks on a Dask cluster (``scheduler``), with identical results.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainnet._display import Record, Summary
from brainnet.errors import BrainnetError, input_error
from brainnet.stats import pearson_columns

__all__ = [
    "BlockedKFold",
    "NaturalisticResult",
    "convolve_frames",
    "load_frame_features",
    "nndb_subject",
    "nndb_bold_path",
    "censored_volumes",
    "encode_naturalistic",
]

#: Default penalty grid (the design is standardised inside the model).
DEFAULT_ALPHAS = np.logspace(-1, 5, 13)
_TIME_BLOCK = 256  # volumes read per step when copying a NIfTI to the voxel-major memmap


# --------------------------------------------------------------------------- cross-validation


class BlockedKFold:
    """K-fold over time in contiguous blocks, with a gap dropped around each test block.

    Parameters
    ----------
    n_splits : int
        Number of contiguous test blocks (>= 2).
    gap : int
        Samples (volumes) removed from the training set on each side of the
        test block. Use at least the HRF length in volumes (e.g.
        ``ceil(30 / tr)``); ``gap=0`` is plain unshuffled k-fold.

    Notes
    -----
    Random (shuffled) k-fold over volumes leaks through autocorrelation and
    inflates accuracy; do not use it for time series. ``split`` follows
    scikit-learn's splitter protocol, so this can be passed as ``cv`` to
    ``cross_val_score`` and friends.
    """

    def __init__(self, n_splits: int = 5, gap: int = 0):
        self.n_splits = n_splits
        self.gap = gap

    def __repr__(self) -> str:
        return f"BlockedKFold(n_splits={self.n_splits}, gap={self.gap})"

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` index arrays; ``X`` has ``n_samples`` rows (or is that int)."""
        n = X if isinstance(X, int | np.integer) else len(X)
        if not isinstance(self.n_splits, int | np.integer) or self.n_splits < 2:
            raise BrainnetError(f"n_splits={self.n_splits!r}: needs an integer >= 2; e.g. n_splits=5")
        if not isinstance(self.gap, int | np.integer) or self.gap < 0:
            raise BrainnetError(f"gap={self.gap!r}: needs a non-negative number of volumes; e.g. gap=30")
        if n - (n // self.n_splits) - 2 * self.gap < 1 or n < self.n_splits:
            raise BrainnetError(
                f"{n} volumes cannot make {self.n_splits} blocks with a gap of {self.gap} volumes on each side; "
                "use fewer splits or a shorter gap (--n-splits, --gap-s)"
            )
        edges = np.linspace(0, n, self.n_splits + 1).round().astype(int)
        idx = np.arange(n)
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            test = idx[start:stop]
            train = idx[(idx < start - self.gap) | (idx >= stop + self.gap)]
            yield train, test


# --------------------------------------------------------------------------- features -> TRs


def convolve_frames(
    frame_features: np.ndarray,
    frame_rate: float,
    tr: float,
    n_trs: int,
    *,
    hrf_model: str = "glover",
    offset_s: float = 0.0,
    unit_chunk: int = 64,
) -> np.ndarray:
    """Convolve frame features with a canonical HRF and sample them at the volume times.

    Parameters
    ----------
    frame_features : ndarray of shape (n_frames, n_units)
        One row per movie frame; frame ``i`` is shown at ``offset_s + i / frame_rate`` s.
    frame_rate : float
        Frames per second of ``frame_features``.
    tr : float
        Repetition time in seconds; volume ``k`` is acquired at ``k * tr``.
    n_trs : int
        Number of volumes.
    hrf_model : {"glover", "spm"}
        nilearn's canonical HRF (``glover_hrf`` / ``spm_hrf``, 32 s long).
    offset_s : float
        Time of the first frame relative to the first volume.
    unit_chunk : int
        Units convolved at once (bounds memory for long, wide feature sets).

    Returns
    -------
    ndarray of shape (n_trs, n_units)
        The design. Volumes before the first frame or after the last (plus
        the HRF tail) see zero input.
    """
    from nilearn.glm.first_level.hemodynamic_models import glover_hrf, spm_hrf
    from scipy.signal import fftconvolve

    x = _as_frames(frame_features)
    if not (frame_rate > 0 and tr > 0):
        raise BrainnetError(f"frame_rate={frame_rate}, tr={tr}: both must be positive numbers of Hz / seconds; check --frame-rate and --tr")
    hrfs = {"glover": glover_hrf, "spm": spm_hrf}
    if hrf_model not in hrfs:
        raise BrainnetError(f"hrf_model={hrf_model!r}: choose 'glover' or 'spm'")
    dt = 1.0 / frame_rate
    # nilearn's kernels sum to one, so the regressor is an HRF-weighted average of the features.
    kernel = hrfs[hrf_model](dt, oversampling=1, time_length=32.0)
    vol_times = np.arange(n_trs) * tr
    out = np.empty((n_trs, x.shape[1]))
    for start in range(0, x.shape[1], unit_chunk):
        block = np.asarray(x[:, start : start + unit_chunk], dtype=np.float64)
        conv = fftconvolve(block, kernel[:, None], mode="full", axes=0)
        times = offset_s + np.arange(conv.shape[0]) * dt
        for j in range(block.shape[1]):
            out[:, start + j] = np.interp(vol_times, times, conv[:, j], left=0.0, right=0.0)
    return out


def _as_frames(frame_features: Any, where: Path | None = None) -> np.ndarray:
    """``(n_frames, n_units)`` finite numbers; errors name ``where`` (the file) when given."""
    def refuse(problem: str, fix: str) -> BrainnetError:
        problem = f"frame features {problem}"
        return input_error(where, problem, fix) if where is not None else BrainnetError(f"{problem}; {fix}")

    x = np.asarray(frame_features)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2 or not np.issubdtype(x.dtype, np.number):
        raise refuse(f"of shape {x.shape}: need a numeric (n_frames, n_units) array", "pass one row per movie frame")
    finite = np.isfinite(x)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise refuse(
            f"contain NaN or infinite values in {rows.size} frames (first: row {rows[0]})",
            "remove or interpolate those frames",
        )
    return x


_READ_ERRORS = (ValueError, OSError, EOFError, UnicodeDecodeError, KeyError, zipfile.BadZipFile)


def load_frame_features(path: str | Path, variable: str | None = None) -> np.ndarray:
    """Read precomputed frame features ``(n_frames, n_units)`` from .mat, .npy, .npz or .tsv.

    MATLAB files up to v7 are read with ``scipy.io.loadmat``; v7.3 files
    (HDF5) with h5py, whose arrays come transposed (MATLAB is column-major)
    and are turned back. ``variable`` names the array when the file holds
    several (e.g. the OSF ``500_days_of_summer_fc7_features.mat``). Pickled
    (object) arrays are never loaded.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise input_error(path, "no such file", "pass the path of the frame-feature file (.mat, .npy, .npz or .tsv)")
    suffix = path.suffix.lower()
    if suffix not in (".mat", ".npy", ".npz", ".tsv", ".csv", ".txt"):
        raise input_error(path, f"unknown frame-feature format {suffix!r}", "use .mat, .npy, .npz or .tsv")
    try:
        arrays = _read_arrays(path, suffix)
    except BrainnetError:
        raise
    except _READ_ERRORS as err:  # truncated, garbage or pickled content
        raise input_error(path, f"not a readable {suffix} file of numbers ({type(err).__name__})", "re-save the frame features as a numeric .npy or .mat") from None
    if variable is not None:
        if variable not in arrays:
            raise input_error(path, f"has no variable {variable!r} (it has {', '.join(sorted(arrays)) or 'none'})", "pass one of those names")
        return _as_frames(arrays[variable], path).astype(np.float64, copy=False)
    if len(arrays) == 1:  # the only array: judged on its own, so a bad shape is reported as such
        return _as_frames(next(iter(arrays.values())), path).astype(np.float64, copy=False)
    candidates = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim == 2 and np.issubdtype(v.dtype, np.number)}
    if len(candidates) != 1:
        names = ", ".join(sorted(candidates)) or "no 2-D numeric array"
        raise input_error(path, f"holds {names}", "name the frame-feature array with variable= (--variable on the command line)")
    return _as_frames(next(iter(candidates.values())), path).astype(np.float64, copy=False)


def _read_arrays(path: Path, suffix: str) -> dict[str, Any]:
    if suffix == ".mat":
        return _read_mat(path)
    if suffix == ".npy":
        return {"array": np.load(path, allow_pickle=False)}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep="\t" if suffix != ".csv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(str(err)) from None
    return {"table": frame.select_dtypes("number").to_numpy()}


def _read_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    try:
        return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3 = HDF5
        pass
    except ValueError as err:
        raise input_error(path, f"not a readable MATLAB file ({err})", "re-save it with MATLAB's save -v7 or as .npy") from None
    try:
        import h5py
    except ImportError:
        raise input_error(path, "is a MATLAB v7.3 (HDF5) file and h5py is not installed", "pip install h5py, or re-save with save -v7") from None
    out = {}
    with h5py.File(path, "r") as fh:
        for key, item in fh.items():
            if isinstance(item, h5py.Dataset) and not key.startswith("#"):
                out[key] = np.asarray(item).T
    return out


# --------------------------------------------------------------------------- NNDb naming


def nndb_subject(label: str | int) -> str:
    """NNDb subject label: ``1``, ``"1"`` or ``"sub-1"`` -> ``"1"``; zero-padded labels are refused."""
    text = str(label).removeprefix("sub-")
    if not re.fullmatch(r"[1-9][0-9]*", text):
        example = text.lstrip("0") if text.isdigit() and text.lstrip("0") else "1"
        raise BrainnetError(
            f"subject {label!r}: NNDb subjects are sub-1 ... sub-86 (not zero-padded); pass {example} (or sub-{example})"
        )
    return text


def nndb_bold_path(root: str | Path, subject: str | int, task: str) -> Path:
    """Path of NNDb's AFNI derivative ``sub-<N>_task-<film>_bold_blur_censor.nii.gz``, checked to exist."""
    sub = nndb_subject(subject)
    if not re.fullmatch(r"[A-Za-z0-9]+", str(task)):
        raise BrainnetError(f"task {task!r}: NNDb tasks are film names such as 500daysofsummer")
    path = Path(root).expanduser() / "derivatives" / f"sub-{sub}" / "func" / f"sub-{sub}_task-{task}_bold_blur_censor.nii.gz"
    if not path.is_file():
        raise input_error(
            path, "no such file",
            f"fetch it with `brainnet fetch ds002837 --subjects {sub} --what derivatives --dest {root}` "
            "(check the film: each subject watched one)",
        )
    return path


# --------------------------------------------------------------------------- data sources


@dataclass(frozen=True)
class _Source:
    """Where voxel time series live; picklable, so Dask workers read their own chunks.

    ``kind`` is ``"array"`` (``data`` in memory, (n_trs, n_voxels)), ``"npy"``
    (a voxel-major (n_voxels, n_trs) ``.npy`` file) or ``"memmap"`` (a user's
    ``np.memmap`` of shape (n_trs, n_voxels)).
    """

    kind: str
    n_trs: int
    n_voxels: int
    data: Any = None
    path: str | None = None
    offset: int = 0
    dtype: str = "float32"
    order: str = "C"

    def read(self, start: int, stop: int) -> np.ndarray:
        """Voxels ``start:stop`` as float64 (n_trs, stop - start)."""
        if self.kind == "array":
            return np.array(self.data[:, start:stop], dtype=np.float64)
        if self.kind == "npy":
            header = _npy_data_offset(self.path)
            block = _pread(self.path, header, np.dtype(self.dtype), (self.n_voxels, self.n_trs), "C", start, stop, rows=True)
            return np.array(block.T, dtype=np.float64)
        block = _pread(self.path, self.offset, np.dtype(self.dtype), (self.n_trs, self.n_voxels), self.order, start, stop, rows=False)
        return np.asarray(block, dtype=np.float64)


def _npy_data_offset(path: str) -> int:
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(fh)
        else:
            np.lib.format.read_array_header_2_0(fh)
        return fh.tell()


def _pread(path: str, offset: int, dtype: np.dtype, shape: tuple[int, int], order: str, start: int, stop: int, rows: bool) -> np.ndarray:
    """Rows (``rows=True``) or columns ``start:stop`` of a 2-D array stored at ``offset`` in ``path``.

    Plain reads instead of a memory map: pages a memory map touches count
    in the process's resident memory until it is unmapped, so strided reads
    of a large file through ``np.memmap`` inflate peak RSS up to the file
    size, while reads only cost the returned block.
    """
    n_rows, n_cols = shape
    item = dtype.itemsize
    contiguous = rows == (order == "C")  # rows of a C array or columns of an F array are one byte range
    if contiguous:
        span = n_cols if order == "C" else n_rows
        count = (stop - start) * span
        out = np.empty(count, dtype=dtype)
        with open(path, "rb", buffering=0) as fh:
            _readinto(fh.fileno(), out, offset + start * span * item)
        if order == "C":
            return out.reshape(stop - start, n_cols)
        return out.reshape(stop - start, n_rows).T
    # columns of a C array (or rows of an F array): one short read per row (column)
    lines = n_rows if order == "C" else n_cols
    length = n_cols if order == "C" else n_rows
    out = np.empty((lines, stop - start), dtype=dtype)
    with open(path, "rb", buffering=0) as fh:
        for i in range(lines):
            _readinto(fh.fileno(), out[i], offset + (i * length + start) * item)
    return out if order == "C" else out.T


def _readinto(fd: int, out: np.ndarray, position: int) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], position + done)
        if n == 0:
            raise BrainnetError(f"file ended early at byte {position + done}; the data file is truncated")
        done += n


def _source_from_array(data: np.ndarray, mask: Any) -> _Source:
    if data.ndim != 2:
        raise BrainnetError(f"BOLD array of shape {data.shape}: pass (n_trs, n_voxels), a 4-D NIfTI or its path")
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != (data.shape[1],):
            raise BrainnetError(f"mask of shape {keep.shape}: for a BOLD array pass a boolean vector of length n_voxels={data.shape[1]}")
        data = data[:, keep]
    # Only a whole file-backed memmap (its base is the mmap itself, not a slice of another array)
    # can be described by (file, offset, shape) for workers to reopen.
    if isinstance(data, np.memmap) and data.filename is not None and isinstance(data.base, mmap.mmap):
        order = "F" if data.flags.f_contiguous and not data.flags.c_contiguous else "C"
        return _Source("memmap", data.shape[0], data.shape[1], path=str(data.filename), offset=int(data.offset), dtype=data.dtype.str, order=order)
    return _Source("array", data.shape[0], data.shape[1], data=data)


def _nifti_to_npy(img: Any, mask: Any, workdir: Path) -> tuple[_Source, Any, Any]:
    """Copy the in-mask voxels of a 4-D image to a voxel-major float32 .npy, reading time blocks."""
    import nibabel as nib

    if img.ndim != 4:
        raise input_error(getattr(img, "get_filename", lambda: None)() or "BOLD image", f"is {img.ndim}-D", "pass a 4-D BOLD image")
    n_trs = img.shape[3]
    if mask is None:
        keep = _nonzero_voxels(img)
        mask_img = nib.Nifti1Image(keep.astype(np.uint8), img.affine)
    else:
        mask_img = _mask_on_grid(mask, img)
        keep = np.asarray(mask_img.dataobj) > 0
    n_vox = int(keep.sum())
    if n_vox == 0:
        raise BrainnetError("the mask selects no voxel of the BOLD image; check the mask and the image's space")
    path = workdir / "bold_voxels_by_time.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_vox, n_trs))
    for t0 in range(0, n_trs, _TIME_BLOCK):
        t1 = min(n_trs, t0 + _TIME_BLOCK)
        block = np.asarray(img.dataobj[..., t0:t1], dtype=np.float32)
        out[:, t0:t1] = block[keep]
    out.flush()
    del out
    return _Source("npy", n_trs, n_vox, path=str(path)), keep, mask_img


def _mask_on_grid(mask: Any, img: Any):
    import nibabel as nib

    if isinstance(mask, nib.spatialimages.SpatialImage):
        if mask.shape[:3] == img.shape[:3] and np.allclose(mask.affine, img.affine):
            return mask
        from nilearn.image import resample_img

        data = resample_img(mask, target_affine=img.affine, target_shape=img.shape[:3], interpolation="nearest", force_resample=True, copy_header=True)
        return nib.Nifti1Image((np.asarray(data.dataobj) > 0).astype(np.uint8), img.affine)
    from brainnet.masks import load_mask

    return load_mask(mask if isinstance(mask, Path) else str(mask), target_img=img)


def _nonzero_voxels(img: Any) -> np.ndarray:
    keep = np.zeros(img.shape[:3], dtype=bool)
    for t0 in range(0, img.shape[3], _TIME_BLOCK):
        block = np.asarray(img.dataobj[..., t0 : t0 + _TIME_BLOCK])
        keep |= np.any(block != 0, axis=-1)
    return keep


def censored_volumes(data: Any, chunk_size: int = 20000) -> np.ndarray:
    """Boolean (n_trs,): True for all-zero volumes (AFNI's censored time points).

    ``data`` is an (n_trs, n_voxels) array or an internal source; read in voxel chunks.
    """
    return _scan_volumes(data, chunk_size)[0]


def _scan_volumes(data: Any, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(censored, non_finite)`` boolean vectors over volumes, in one pass over the voxels."""
    source = data if isinstance(data, _Source) else _source_from_array(data, None)
    nonzero = np.zeros(source.n_trs, dtype=bool)
    bad = np.zeros(source.n_trs, dtype=bool)
    for start in range(0, source.n_voxels, chunk_size):
        block = source.read(start, min(source.n_voxels, start + chunk_size))
        nonzero |= np.any(block != 0, axis=1)
        bad |= ~np.all(np.isfinite(block), axis=1)
    return ~nonzero, bad


def _refuse_non_finite(bold: Any, bad: np.ndarray) -> None:
    if bad.any():
        where = bold if isinstance(bold, str | Path) else getattr(bold, "get_filename", lambda: None)() or "BOLD array"
        raise input_error(
            where,
            f"{int(bad.sum())} of {bad.size} volumes hold NaN or Inf values inside the mask (first: volume {int(np.argmax(bad))})",
            "set those volumes to 0 so they are censored, or choose a --mask that leaves such voxels out",
        )


# --------------------------------------------------------------------------- encoding


def _make_ridge(alphas: np.ndarray):
    """The one place the ridge model is chosen: brainnet's VoxelwiseRidgeCV, else scikit-learn's."""
    try:
        from brainnet.encoding import VoxelwiseRidgeCV
    except ImportError:  # pragma: no cover - brainnet.encoding ships with brainnet
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, alpha_per_target=True))
    # Inner penalty choice on unshuffled contiguous folds: leave-one-out over autocorrelated volumes would favour weak penalties.
    return VoxelwiseRidgeCV(alphas=alphas, inner=5)


def _encode_chunk(source: _Source, start: int, stop: int, design: np.ndarray, folds: list, alphas: np.ndarray, model=None) -> dict[str, np.ndarray]:
    """Out-of-fold predictions and scores for voxels ``start:stop`` (runs on a worker)."""
    from sklearn.base import clone

    from brainnet._threads import single_blas_thread

    # One BLAS thread makes results independent of the worker's thread count; the limit is
    # scoped so that the caller's (e.g. a notebook's) numpy is not left single-threaded.
    with single_blas_thread():
        return _encode_chunk_pinned(source, start, stop, design, folds, alphas, model, clone)


def _encode_chunk_pinned(source, start, stop, design, folds, alphas, model, clone) -> dict[str, np.ndarray]:
    y = source.read(start, stop)
    r_folds = np.empty((len(folds), y.shape[1]))
    r2_folds = np.empty((len(folds), y.shape[1]))
    for k, (train, test) in enumerate(folds):
        est = clone(model) if model is not None else _make_ridge(alphas)
        est.fit(design[train], y[train])
        pred = np.asarray(est.predict(design[test])).reshape(test.size, -1)
        r_folds[k] = pearson_columns(pred, y[test])
        r2_folds[k] = _r2_columns(y[test], pred)
    # Scores are averaged over test blocks, not pooled: pooled predictions carry each training
    # set's mean, which is anti-correlated with the test block's mean and biases pooled r below 0.
    return {"r": r_folds.mean(axis=0), "r2": r2_folds.mean(axis=0), "r_folds": r_folds}


def _r2_columns(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss_res = ((y - pred) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


@dataclass(repr=False)
class NaturalisticResult(Record):
    """Voxelwise accuracy of a naturalistic encoding model.

    Attributes
    ----------
    r : ndarray of shape (n_voxels,)
        Mean over test blocks of the Pearson r between predictions and the
        BOLD signal on the block's uncensored volumes (NaN for constant
        voxels). Averaged per block rather than pooled, because pooled
        out-of-fold predictions are biased below zero under blocked CV.
    r2 : ndarray of shape (n_voxels,)
        Mean over test blocks of the out-of-sample R².
    r_folds : ndarray of shape (n_splits, n_voxels)
        Pearson r within each test block.
    censored : ndarray of shape (n_trs,)
        Volumes excluded from fitting and scoring (all-zero volumes).
    folds : list of (train, test)
        Volume indices actually used (gaps and censored volumes removed).
    mask_img : nibabel image or None
        The voxels' mask when the input was a NIfTI (for :meth:`to_img`).
    parameters : dict
        Everything that determines the result.
    """

    r: np.ndarray
    r2: np.ndarray
    r_folds: np.ndarray
    censored: np.ndarray
    folds: list
    mask_img: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def n_censored(self) -> int:
        return int(self.censored.sum())

    def to_img(self, values: np.ndarray | None = None):
        """A 3-D NIfTI of ``values`` (default ``r``) inside the mask; needs a NIfTI input."""
        import nibabel as nib

        if self.mask_img is None:
            raise BrainnetError("this result came from an array, not a NIfTI image; there is no grid to map it on")
        keep = np.asarray(self.mask_img.dataobj) > 0
        data = np.zeros(keep.shape, dtype=np.float32)
        data[keep] = np.nan_to_num(self.r if values is None else values, nan=0.0)
        return nib.Nifti1Image(data, self.mask_img.affine)

    @property
    def summary(self) -> Summary:
        """Counts and mean / max r over voxels (finite values), for summary.json.

        A dict; calling it (``result.summary()``) returns the same dict.
        """
        finite = np.isfinite(self.r)
        return Summary({
            "analysis": "naturalistic_encoding",
            "n_voxels": int(self.r.size),
            "n_volumes": int(self.censored.size),
            "n_censored": self.n_censored,
            "mean_r": float(np.mean(self.r[finite])) if finite.any() else None,
            "max_r": float(np.max(self.r[finite])) if finite.any() else None,
            "parameters": self.parameters,
        })

    @property
    def table(self):
        """Per voxel: mean r and R² over test blocks."""
        import pandas as pd

        return pd.DataFrame({"voxel": np.arange(self.r.size), "r": self.r, "r2": self.r2})

    def plot(self) -> list[Any]:
        """Histogram of every voxel's r (main), then the glass brain of r for NIfTI inputs."""
        from brainnet.plotting import plot_brain_map, plot_score_histogram

        figures = [plot_score_histogram(self.r, xlabel="encoding accuracy per voxel (Pearson r)",
                                        title="movie encoding: r of every voxel")]
        if self.mask_img is not None and np.isfinite(self.r).any():
            threshold = float(np.nanquantile(self.r, 0.95))
            figures.append(plot_brain_map(self.to_img(), kind="glass", threshold=threshold, two_sided=False,
                                          value_label="encoding accuracy (Pearson r)",
                                          title="top 5 % of voxels by r (display threshold, not a test)"))
        return figures

    def write(
        self,
        out: str | Path,
        *,
        inputs: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write ``scores.npz`` (+ ``r.nii.gz`` for NIfTI inputs) and ``summary.json`` into ``out``.

        ``inputs`` may name the ``bold``, ``frame_features`` and ``mask``
        files; files are recorded in the provenance with their sha256.
        """
        from brainnet.results import ResultDir

        prov = provenance or _provenance(self.parameters, inputs or {})
        rd = ResultDir(out, prov, overwrite=overwrite)
        rd.write_npz("scores.npz", r=self.r, r2=self.r2, r_folds=self.r_folds, censored=self.censored)
        if self.mask_img is not None:
            rd.write_nifti("r.nii.gz", self.to_img())
            rd.write_nifti("mask.nii.gz", self.mask_img)
        super().write(rd.path)  # the record itself, for read()
        rd.finish(self.summary)
        return rd.path


def _provenance(parameters: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    from brainnet.results import file_record, make_provenance

    def describe(value: Any) -> Any:
        if isinstance(value, str | Path) and Path(value).is_file():
            return file_record(value)
        return None if value is None else str(value) if isinstance(value, str | Path) else "in-memory array"

    return make_provenance(
        weights=None,  # frame features are an input here; the network that made them is the user's record
        features=describe(inputs.get("frame_features")),
        study=describe(inputs.get("bold")),
        mask=describe(inputs.get("mask")),
        parameters=parameters,
    )


def encode_naturalistic(
    bold: Any,
    frame_features: Any,
    *,
    frame_rate: float,
    tr: float,
    n_splits: int = 5,
    gap_s: float = 30.0,
    alphas: Sequence[float] | None = None,
    mask: Any = None,
    chunk_size: int = 5000,
    scheduler: Any = None,
    hrf_model: str = "glover",
    offset_s: float = 0.0,
    workdir: str | Path | None = None,
    model: Any = None,
    n_jobs: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    inputs: dict[str, Any] | None = None,
) -> NaturalisticResult:
    """Voxelwise encoding of a movie's frame features with blocked cross-validation.

    Parameters
    ----------
    bold : path, nibabel image or ndarray
        A 4-D BOLD image (e.g. NNDb's ``..._bold_blur_censor.nii.gz``, see
        :func:`nndb_bold_path`) or an (n_trs, n_voxels) array / ``np.memmap``.
    frame_features : ndarray of shape (n_frames, n_units), or path
        Features per frame, or a file for :func:`load_frame_features`.
    frame_rate : float
        Frames per second of ``frame_features``.
    tr : float
        Repetition time (s).
    n_splits : int
        Contiguous test blocks of :class:`BlockedKFold`.
    gap_s : float
        Seconds dropped from training on each side of a test block; keep it
        at least the HRF length (30 s default). Random k-fold over volumes
        leaks through autocorrelation; this is why the gap exists.
    alphas : sequence of float, optional
        Ridge penalties, one chosen per voxel inside each training set.
    mask : optional
        NIfTI inputs: a region name (``"occipital"``), a mask path or image
        (resampled to the BOLD grid); default all voxels that are ever
        non-zero. Array inputs: a boolean vector over voxels.
    chunk_size : int
        Voxels per chunk; memory is about ``n_trs * chunk_size * 8`` bytes
        times a few, whatever the number of voxels.
    scheduler : str or distributed.Client, optional
        Run chunks on a Dask cluster (scheduler address or client); results
        are identical to the single-process run. Workers must see the same
        files (``workdir`` on a shared filesystem for multi-machine clusters).
    hrf_model : {"glover", "spm"}
    offset_s : float
        Time of the first frame relative to the first volume.
    workdir : path, optional
        Where a NIfTI input is unpacked as a voxel-major memmap (default a
        temporary folder under the brainnet cache; removed afterwards).
    model : scikit-learn regressor, optional
        Replace the ridge (cloned per fold and chunk), e.g. for a fixed penalty.
    n_jobs : int
        Chunks run in parallel threads when there is no ``scheduler``.
    out : path, optional
        Result folder (see :meth:`NaturalisticResult.write`). It is opened
        before the analysis, so a folder holding results of other
        parameters or data is refused at once (unless ``overwrite``); a
        refusal during the analysis removes the folder it created.
    overwrite : bool
    inputs : dict, optional
        Files recorded in the provenance (``bold``, ``frame_features``,
        ``mask``); default ``bold``, ``frame_features`` and ``mask`` as given.

    Returns
    -------
    NaturalisticResult

    Notes
    -----
    BLAS runs single-threaded during the analysis (and on Dask workers):
    multi-threaded BLAS sums in an order that depends on the thread count,
    which changes the last bits of the results. Parallelism comes from
    chunks instead (``n_jobs`` or ``scheduler``), so the numbers do not
    depend on how the work was spread.
    """
    recorded = dict(inputs) if inputs is not None else {"bold": bold, "frame_features": frame_features, "mask": mask}
    if isinstance(frame_features, str | Path):
        frame_features = load_frame_features(frame_features)
    alphas_arr = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=np.float64)
    from brainnet._checks import check_options

    check_options(chunk_size=chunk_size, n_jobs=n_jobs)
    frames = _as_frames(frame_features)
    if not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise BrainnetError(f"n_splits={n_splits!r}: needs an integer >= 2; e.g. n_splits=5")
    if not gap_s >= 0:  # also NaN
        raise BrainnetError(f"gap_s={gap_s!r}: needs a non-negative number of seconds; e.g. gap_s=30")
    if not (frame_rate > 0 and tr > 0):
        raise BrainnetError(f"frame_rate={frame_rate}, tr={tr}: both must be positive numbers of Hz / seconds; check --frame-rate and --tr")
    params = {
        "frame_rate": float(frame_rate), "tr": float(tr), "n_splits": int(n_splits), "gap_s": float(gap_s),
        "gap_volumes": int(math.ceil(gap_s / tr)), "alphas": alphas_arr.tolist(), "hrf_model": hrf_model,
        "offset_s": float(offset_s), "n_frames": int(frames.shape[0]), "n_units": int(frames.shape[1]),
        "model": "VoxelwiseRidgeCV(inner=5)" if model is None else repr(model),
    }
    from brainnet import runs

    execution = runs.Execution(n_jobs, scheduler=scheduler)
    if out is None:
        return _encode(bold, frames, params, alphas_arr, mask, chunk_size, execution, hrf_model, offset_s, workdir, model)
    # Other parameters in ``out`` are refused (the differing one named) before the inputs are
    # checksummed or the BOLD is read; a refusal during the long run removes what it added.
    with runs.opened_folder(out, lambda: _provenance(params, recorded), overwrite, parameters=params) as folder:
        result = _encode(bold, frames, params, alphas_arr, mask, chunk_size, execution, hrf_model, offset_s, workdir, model,
                         _ChunkStore(folder.checkpoint_dir))
    result.write(out, provenance=folder.provenance)
    return result


def _encode(bold, frame_features, params, alphas_arr, mask, chunk_size, execution, hrf_model, offset_s, workdir, model,
            store: _ChunkStore | None = None) -> NaturalisticResult:
    from brainnet._threads import single_blas_thread

    frame_rate, tr, n_splits, gap_s = params["frame_rate"], params["tr"], params["n_splits"], params["gap_s"]
    with single_blas_thread(), _bold_source(bold, mask, workdir) as (source, mask_img):
        design = convolve_frames(frame_features, frame_rate, tr, source.n_trs, hrf_model=hrf_model, offset_s=offset_s)
        _check_durations(np.shape(frame_features)[0] / frame_rate + offset_s, source.n_trs * tr)
        censored, non_finite = _scan_volumes(source, max(chunk_size, 1000))
        _refuse_non_finite(bold, non_finite)
        gap = params["gap_volumes"]
        folds = [(tr_[~censored[tr_]], te[~censored[te]]) for tr_, te in BlockedKFold(n_splits, gap).split(source.n_trs)]
        if any(te.size < 3 or tr_.size < 3 for tr_, te in folds):
            raise BrainnetError(
                f"n_splits={n_splits}, gap_s={gap_s:g}: a fold keeps fewer than 3 uncensored volumes of {source.n_trs} "
                f"({int(censored.sum())} censored); use fewer splits or a shorter gap (--n-splits, --gap-s)"
            )
        bounds = [(s, min(source.n_voxels, s + chunk_size)) for s in range(0, source.n_voxels, chunk_size)]
        parts = _run_chunks(source, bounds, design, folds, alphas_arr, model, execution, store)
    return NaturalisticResult(
        r=np.concatenate([p["r"] for p in parts]),
        r2=np.concatenate([p["r2"] for p in parts]),
        r_folds=np.concatenate([p["r_folds"] for p in parts], axis=1),
        censored=censored,
        folds=folds,
        mask_img=mask_img,
        parameters=params,
    )


def _check_durations(movie_s: float, scan_s: float) -> None:
    # A mismatch usually means a wrong frame rate or TR; scans often run a little past the film.
    if abs(movie_s - scan_s) > max(20.0, 0.05 * scan_s):
        from brainnet.errors import notice

        notice(
            f"the frame features last {movie_s:.0f} s but the BOLD data {scan_s:.0f} s; "
            "check --frame-rate, --tr and --offset-s (volumes without features see zero input)"
        )


@contextlib.contextmanager
def _bold_source(bold: Any, mask: Any, workdir: str | Path | None):
    import nibabel as nib

    if isinstance(bold, np.ndarray):
        yield _source_from_array(bold, mask), None
        return
    if isinstance(bold, str | Path):
        path = Path(bold).expanduser()
        if not path.is_file():
            raise input_error(path, "no such file", "pass a 4-D BOLD NIfTI (NNDb: derivatives/sub-<N>/func/...bold_blur_censor.nii.gz)")
        try:
            bold = nib.load(str(path))
        except Exception as err:  # nibabel raises many types for unreadable files
            raise input_error(path, f"cannot read as NIfTI ({type(err).__name__})", "pass a 4-D BOLD NIfTI") from None
    if not hasattr(bold, "dataobj"):
        raise BrainnetError(f"BOLD input of type {type(bold).__name__}: pass a 4-D NIfTI path or image, or an (n_trs, n_voxels) array")
    from brainnet._paths import cache_dir

    base = Path(workdir).expanduser() if workdir is not None else cache_dir("naturalistic")
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix="run-"))
    try:
        source, _, mask_img = _nifti_to_npy(bold, mask, tmp)
        yield source, mask_img
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _ChunkStore:
    """Finished voxel chunks of one run, one ``.npz`` each, in the result folder's checkpoints.

    The result folder's provenance fingerprint guarantees that a resumed run
    has the same inputs and parameters; chunks are keyed by their voxel range,
    so another ``chunk_size`` simply finds nothing to reuse.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, start: int, stop: int) -> Path:
        return self.folder / f"voxels-{start}-{stop}.npz"

    def get(self, start: int, stop: int) -> dict[str, np.ndarray] | None:
        import zipfile
        import zlib

        from brainnet.permutation import _discard

        path = self._path(start, stop)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                part = {key: data[key] for key in ("r", "r2", "r_folds")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            _discard(path, f"is unreadable or truncated ({type(err).__name__})")
            return None
        if part["r"].shape != (stop - start,) or part["r2"].shape != (stop - start,) or part["r_folds"].shape[-1] != stop - start:
            _discard(path, f"does not hold voxels {start}-{stop}")
            return None
        return part

    def put(self, start: int, stop: int, part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from brainnet.results import atomic_save_npz

        atomic_save_npz(self._path(start, stop), **part)
        return part


def _run_chunks(source, bounds, design, folds, alphas, model, execution,
                store: _ChunkStore | None = None) -> list[dict[str, np.ndarray]]:
    """Scores of every chunk, in ``bounds`` order; chunks already in ``store`` are not recomputed.

    ``execution`` (:class:`brainnet.runs.Execution`): chunks on ``n_jobs`` threads, or one Dask
    task each when it gives a client.
    """
    from brainnet._progress import progress_bar

    done = {ab: store.get(*ab) for ab in bounds} if store is not None else {}
    todo = [ab for ab in bounds if done.get(ab) is None]
    bar = progress_bar(len(bounds), initial=len(bounds) - len(todo), unit="chunk", desc="voxel chunks")

    def keep(ab, part):
        done[ab] = store.put(*ab, part) if store is not None else part
        bar.update()

    n_jobs = (os.cpu_count() or 1) if execution.n_jobs == -1 else int(execution.n_jobs)
    with bar, execution.client() as client:
        if client is None:
            if n_jobs == 1:
                for a, b in todo:
                    keep((a, b), _encode_chunk(source, a, b, design, folds, alphas, model))
            else:
                from concurrent.futures import ThreadPoolExecutor, as_completed

                with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                    running = {pool.submit(_encode_chunk, source, a, b, design, folds, alphas, model): (a, b) for a, b in todo}
                    for future in as_completed(running):
                        keep(running[future], future.result())
            return [done[ab] for ab in bounds]
        from distributed import as_completed

        # The design and folds go to every worker once; chunks are read by the workers themselves
        # (file-backed sources) or shipped with the task (in-memory arrays).
        # hash=False: unique keys, so a rerun with identical inputs never reuses a key being released.
        shared = client.scatter([design, folds], broadcast=True, hash=False)
        running = {}
        for a, b in todo:
            src, start, stop = (_chunk_source(source, a, b), 0, b - a) if source.kind == "array" else (source, a, b)
            running[client.submit(_encode_chunk, src, start, stop, shared[0], shared[1], alphas, model, pure=False)] = (a, b)
        for future in as_completed(list(running)):
            keep(running[future], future.result())
        return [done[ab] for ab in bounds]


def _chunk_source(source: _Source, start: int, stop: int) -> _Source:
    if source.kind != "array":
        return source
    return _Source("array", source.n_trs, stop - start, data=np.ascontiguousarray(source.data[:, start:stop]))
