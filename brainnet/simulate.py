"""Simulated studies with a planted, known truth.

:func:`simulate_study` writes a complete study in brainnet's format (see
:mod:`brainnet.study`): procedurally generated PNG images, their network
features (EmoNet, trained weights or deterministic untrained ones), and
per-subject single-trial betas on a coarse MNI grid made as

    betas = zscore(features) @ map_subject  (in signal voxels)  +  noise

with spatially smooth maps and spatially smooth Gaussian noise at a chosen
signal-to-noise ratio. Every subject has its own map (a shared group map plus
an individual part), so subjects share a representational geometry and a
group decoder generalises across subjects, as anatomically aligned fMRI does.
``truth.json`` and ``truth.npz`` record what was planted, so analyses can be
tested by recovering it.

Images are drawn with Pillow and numpy: each category has its own shape,
palette and texture, and each image varies position, size, orientation and
noise, so network features differ across images and cluster by category.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from brainnet.errors import BrainnetError, input_error

__all__ = ["CATEGORIES", "simulate_study", "load_truth", "simulated_images"]

CATEGORIES: tuple[str, ...] = ("disc", "square", "triangle", "stripes", "checker", "rings", "blobs", "star")
_SPACE = "MNI152NLin2009cAsym"
# Origin of nilearn's 2 mm MNI152 grid; coarser grids keep it so voxel centres coincide.
_MNI_ORIGIN = np.array([-98.0, -134.0, -72.0])
_MNI_SHAPE_2MM = np.array([99, 117, 95])
_DATA_REGIONS = ("occipital", "v1", "v2", "v3", "v4", "inferotemporal")
_IMAGE_SIZE = 128


def _image(category: int, rng: np.random.Generator, size: int = _IMAGE_SIZE) -> np.ndarray:
    """One RGB uint8 image of a category, with random nuisance variation."""
    from PIL import Image, ImageDraw

    hue = category / len(CATEGORIES)
    base = np.array([np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)]) * 0.5 + 0.5
    fg = np.clip(base * 255 * rng.uniform(0.7, 1.0) + rng.normal(0, 20, 3), 0, 255)
    bg = np.clip((1 - base) * 200 * rng.uniform(0.3, 1.0) + rng.normal(0, 20, 3), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, np.pi)
    freq = 3 + 2 * category + rng.uniform(-1, 1)
    name = CATEGORIES[category]
    if name == "stripes":
        field = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle))) > 0
    elif name == "checker":
        field = (np.floor(xx * freq / 2) + np.floor(yy * freq / 2)) % 2 == 0
    elif name == "rings":
        cx, cy = rng.uniform(0.3, 0.7, 2)
        field = np.sin(2 * np.pi * freq * np.hypot(xx - cx, yy - cy)) > 0
    elif name == "blobs":
        from scipy.ndimage import gaussian_filter

        noise = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 16)
        field = noise > 0
    else:
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        r = rng.uniform(0.18, 0.35) * size
        if name == "disc":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            n = {"square": 4, "triangle": 3, "star": 10}[name]
            radii = np.where(np.arange(n) % 2, r * 0.45, r) if name == "star" else np.full(n, r)
            theta = angle + 2 * np.pi * np.arange(n) / n
            draw.polygon([(cx + q * np.cos(t), cy + q * np.sin(t)) for q, t in zip(radii, theta, strict=True)], fill=255)
        field = np.asarray(canvas) > 127
    img = np.where(field[..., None], fg, bg)
    img = img + rng.normal(0, rng.uniform(5, 30), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def simulated_images(folder: str | Path, n_stimuli: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Write ``n_stimuli`` PNG images into ``folder``; return ids, file names, categories.

    Categories cycle through :data:`CATEGORIES` (at most ``n_stimuli // 4``
    of them, at least 2) so each category has several images.
    """
    from PIL import Image

    from brainnet.results import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_cat = int(np.clip(n_stimuli // 4, 2, len(CATEGORIES))) if n_stimuli >= 2 else 1
    rng = np.random.default_rng([seed, 1])
    ids, files, cats = [], [], []
    for i in range(n_stimuli):
        c = i % n_cat
        sid = f"stim{i + 1:03d}"
        name = f"{sid}_{CATEGORIES[c]}.png"
        with atomic_path(folder / name, suffix=".png") as tmp:
            Image.fromarray(_image(c, rng)).save(tmp, format="PNG")
        ids.append(sid)
        files.append(name)
        cats.append(CATEGORIES[c])
    return ids, files, cats


def _grid(resolution_mm: float):
    """The data grid: MNI at ``resolution_mm``, cropped to the visual regions (+1 voxel)."""
    from brainnet.masks import load_mask

    step = resolution_mm
    full_shape = np.ceil(_MNI_SHAPE_2MM * 2.0 / step).astype(int)
    affine = np.diag([step, step, step, 1.0])
    affine[:3, 3] = _MNI_ORIGIN
    ref = nib.Nifti1Image(np.zeros(tuple(full_shape), np.uint8), affine)
    regions = {name: np.asarray(load_mask(name, ref).dataobj) > 0 for name in _DATA_REGIONS}
    data = np.any(list(regions.values()), axis=0)
    lo = np.maximum(np.argwhere(data).min(0) - 1, 0)
    hi = np.minimum(np.argwhere(data).max(0) + 2, full_shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    affine = affine.copy()
    affine[:3, 3] = _MNI_ORIGIN + lo * step
    return affine, data[crop], regions["occipital"][crop]


def _smooth_fields(rng, n: int, shape, sigma: float) -> np.ndarray:
    """``n`` spatially smooth unit-variance Gaussian fields, shape ``(n, *shape)``."""
    from scipy.ndimage import gaussian_filter

    out = rng.standard_normal((n, *shape)).astype(np.float32)
    for k in range(n):
        out[k] = gaussian_filter(out[k], sigma=sigma, mode="constant")
    out /= out.reshape(n, -1).std(axis=1).reshape(n, *([1] * len(shape))) + 1e-12
    return out


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def simulate_study(
    out: str | Path,
    *,
    n_subjects: int = 18,
    n_stimuli: int = 112,
    seed: int = 0,
    resolution_mm: float = 4.0,
    layer: str = "fc8",
    snr: float = 0.25,
    n_repeats: int = 1,
    n_runs: int = 2,
    n_signal_voxels: int | None = None,
    individual: float = 0.3,
    smoothness_mm: float = 6.0,
    null: bool = False,
    weights: str | Path | None = None,
    untrained_seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a simulated study with known truth into ``out``.

    Parameters
    ----------
    out : str or Path
        New (or empty) folder; with ``overwrite`` an existing one is replaced.
    n_subjects, n_stimuli : int
        Study size.
    seed : int
        Seed of images, maps and noise (the output is a function of all parameters).
    resolution_mm : float
        Voxel size of the MNI grid (4 mm: ~2,700 occipital voxels).
    layer : str
        Network layer whose features drive the voxels.
    snr : float
        Signal variance / noise variance in signal voxels (per trial).
    n_repeats : int
        Presentations of each stimulus (independent noise each time).
    n_runs : int
        Runs the trials are split into (recorded in the events ``run`` column).
    n_signal_voxels : int, optional
        Occipital voxels carrying signal (default: half of them, in smooth blobs).
    individual : float
        Fraction of each subject's map variance that is individual (0 = every
        subject has the group map).
    smoothness_mm : float
        Gaussian sigma of the maps and the noise.
    null : bool
        Betas are noise only, independent of the features.
    weights : str or Path, optional
        EmoNet weights; None: deterministic untrained weights (``untrained_seed``).
    untrained_seed : int
        Seed of the untrained weights.
    overwrite : bool
        Replace a non-empty ``out``.

    Returns
    -------
    Path
        ``out``.
    """
    from brainnet._checks import check_options

    check_options(seed=seed, untrained_seed=untrained_seed)
    out = Path(out).expanduser()
    _check_args(out, n_subjects, n_stimuli, resolution_mm, snr, n_repeats, n_runs, individual, overwrite)
    if out.exists() and overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    from brainnet.extract import extract_activations
    from brainnet.stimuli import StimulusSet

    ids, files, cats = simulated_images(out / "stimuli", n_stimuli, seed)
    stim_set = StimulusSet(tuple(ids), tuple((out / "stimuli" / f).resolve() for f in files), tuple(cats), (out / "stimuli").resolve())
    feats = extract_activations(stim_set, layers=(layer,), weights=weights, seed=untrained_seed)
    x = _zscore(feats.layer(layer).astype(np.float64))
    weights_id = feats.provenance.get("weights") if hasattr(feats, "provenance") else None

    affine, data_mask, occipital = _grid(resolution_mm)
    sigma = smoothness_mm / resolution_mm
    rng = np.random.default_rng([seed, 2])
    signal_mask = _signal_voxels(rng, occipital, sigma, n_signal_voxels)
    n_sig = int(signal_mask.sum())
    n_units = x.shape[1]
    group = _smooth_fields(rng, n_units, data_mask.shape, sigma)[:, signal_mask]
    # Scale so that x @ map has unit variance per voxel (x has unit-variance columns).
    group /= np.sqrt(n_units)

    _write_tables(out, n_subjects, ids, files, cats, seed)
    maps = np.zeros((n_subjects, n_units, n_sig), dtype=np.float32)
    for s in range(n_subjects):
        label = f"{s + 1:02d}"
        srng = np.random.default_rng([seed, 3, s])
        own = _smooth_fields(srng, n_units, data_mask.shape, sigma)[:, signal_mask] / np.sqrt(n_units)
        mixed = np.sqrt(1 - individual) * group + np.sqrt(individual) * own
        # Unit signal variance per voxel across stimuli, so snr is the variance ratio.
        maps[s] = mixed / ((x @ mixed).std(axis=0) + 1e-12)
        order = np.concatenate([srng.permutation(n_stimuli) for _ in range(n_repeats)])
        n_trials = order.size
        noise = _smooth_fields(srng, n_trials, data_mask.shape, sigma)[:, data_mask]
        betas = noise / np.sqrt(snr)
        if not null:
            sig_cols = signal_mask[data_mask]
            betas[:, sig_cols] += (x[order] @ maps[s]).astype(np.float32)
        vol = np.zeros((*data_mask.shape, n_trials), dtype=np.float32)
        vol[data_mask] = betas.T
        runs = 1 + (np.arange(n_trials) * n_runs) // n_trials
        _write_subject(out, label, vol, affine, [ids[i] for i in order], runs)

    _write_truth(out, locals_=dict(
        signal_mask=signal_mask, data_mask=data_mask, occipital=occipital, affine=affine, group=group,
        maps=maps, x=x, ids=ids, layer=layer, weights_id=weights_id, n_subjects=n_subjects,
        n_stimuli=n_stimuli, seed=seed, resolution_mm=resolution_mm, snr=snr, n_repeats=n_repeats,
        n_runs=n_runs, individual=individual, smoothness_mm=smoothness_mm, null=null,
        untrained_seed=untrained_seed, weights=weights,
    ))
    return out


def _check_args(out, n_subjects, n_stimuli, resolution_mm, snr, n_repeats, n_runs, individual, overwrite):
    if out.exists() and not out.is_dir():
        raise input_error(out, "exists and is not a folder", "choose another --out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise input_error(out, "already exists and is not empty", "choose another --out folder or pass --overwrite")
    checks = [
        (n_subjects >= 1, "--subjects must be at least 1"),
        (n_stimuli >= 2, "--stimuli must be at least 2"),
        (1.0 <= resolution_mm <= 12.0, "--resolution must be between 1 and 12 mm"),
        (snr > 0, "--snr must be positive"),
        (n_repeats >= 1, "--repeats must be at least 1"),
        (1 <= n_runs <= n_stimuli * n_repeats, "--runs must be between 1 and the number of trials"),
        (0.0 <= individual < 1.0, "individual must be in [0, 1)"),
    ]
    for ok, message in checks:
        if not ok:
            raise BrainnetError(f"simulate: {message}; change the option")


def _signal_voxels(rng, occipital: np.ndarray, sigma: float, n_signal: int | None) -> np.ndarray:
    """Smooth blobs of occipital voxels: the top ``n_signal`` of a smooth random field."""
    n_occ = int(occipital.sum())
    n_signal = n_occ // 2 if n_signal is None else int(n_signal)
    if not 1 <= n_signal <= n_occ:
        raise BrainnetError(f"simulate: n_signal_voxels must be between 1 and {n_occ} (occipital voxels at this resolution); change it")
    field = _smooth_fields(rng, 1, occipital.shape, sigma * 2)[0]
    values = np.where(occipital, field, -np.inf)
    thresh = np.sort(values[occipital])[::-1][n_signal - 1]
    mask = occipital & (values >= thresh)
    return mask


def _write_tables(out: Path, n_subjects: int, ids, files, cats, seed: int) -> None:
    import pandas as pd

    from brainnet.results import atomic_write_json, atomic_write_tsv, brainnet_version

    atomic_write_json(out / "dataset_description.json", {
        "Name": f"brainnet simulated study (seed {seed})",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainnet", "Version": brainnet_version(), "Description": "brainnet.simulate.simulate_study"}],
    })
    atomic_write_tsv(out / "participants.tsv", pd.DataFrame({"participant_id": [f"sub-{s + 1:02d}" for s in range(n_subjects)]}))
    atomic_write_tsv(out / "stimuli.tsv", pd.DataFrame({"stimulus_id": ids, "file": files, "category": cats}))


def _write_subject(out: Path, label: str, vol: np.ndarray, affine: np.ndarray, trial_ids, runs) -> None:
    import pandas as pd

    from brainnet.results import atomic_write_nifti, atomic_write_tsv

    func = out / f"sub-{label}" / "func"
    img = nib.Nifti1Image(vol, affine)
    img.header.set_xyzt_units("mm")
    atomic_write_nifti(func / f"sub-{label}_task-simulated_space-{_SPACE}_desc-singletrial_betas.nii.gz", img)
    atomic_write_tsv(func / f"sub-{label}_task-simulated_desc-singletrial_events.tsv",
                     pd.DataFrame({"stimulus_id": trial_ids, "run": runs}))


def _write_truth(out: Path, locals_: dict[str, Any]) -> None:
    from brainnet.results import atomic_save_npz, atomic_write_json, make_provenance

    v = locals_
    sig_ijk = np.argwhere(v["signal_mask"])
    null_ijk = np.argwhere(v["data_mask"] & ~v["signal_mask"])
    params = {k: v[k] for k in ("n_subjects", "n_stimuli", "seed", "resolution_mm", "layer", "snr", "n_repeats",
                                "n_runs", "individual", "smoothness_mm", "null", "untrained_seed")}
    params["n_signal_voxels"] = int(len(sig_ijk))
    weights = v["weights_id"] or (f"untrained-seed{v['untrained_seed']}" if v["weights"] is None else str(v["weights"]))
    truth = {
        "description": (
            "betas[trial] = zscore(features[layer])[stimulus] @ maps[subject] in signal voxels + smooth noise "
            "(noise variance 1/snr); maps[subject] = sqrt(1-individual)*group_map + sqrt(individual)*own map"
            + ("; null study: no signal anywhere" if v["null"] else "")
        ),
        "layer": v["layer"],
        "weights": weights,
        "snr": v["snr"],
        "seed": v["seed"],
        "null": v["null"],
        "grid": {"shape": list(v["data_mask"].shape), "affine": v["affine"].tolist(), "space": _SPACE},
        "n_data_voxels": int(v["data_mask"].sum()),
        "n_occipital_voxels": int(v["occipital"].sum()),
        "signal_voxel_ijk": sig_ijk.tolist(),
        "arrays": "truth.npz: signal_ijk (n_signal, 3), null_ijk (n_null, 3), features (n_stimuli, n_units), "
                  "stimulus_ids, group_map (n_units, n_signal), maps (n_subjects, n_units, n_signal)",
        "provenance": make_provenance(weights=weights, seed=v["seed"], parameters=params),
    }
    atomic_write_json(out / "truth.json", truth)
    atomic_save_npz(out / "truth.npz", signal_ijk=sig_ijk, null_ijk=null_ijk, features=v["x"].astype(np.float32),
                    stimulus_ids=np.array(v["ids"], dtype=str), group_map=v["group"].astype(np.float32),
                    maps=v["maps"])


def load_truth(study: str | Path) -> dict[str, Any]:
    """The ground truth of a simulated study: ``truth.json`` merged with the arrays of ``truth.npz``."""
    study = Path(study)
    path = study / "truth.json"
    if not path.is_file():
        raise input_error(path, "no ground truth here", "give a folder written by brainnet simulate")
    truth = json.loads(path.read_text(encoding="utf-8"))
    with np.load(study / "truth.npz", allow_pickle=False) as arrays:
        truth.update({k: arrays[k] for k in arrays.files})
    return truth
