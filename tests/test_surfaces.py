"""Surface studies: CIFTI grayordinates, regions as vertex sets, surface maps.

The miniature NOD-shaped released-betas dataset re-expresses a simulated MNI
study on "cortex" meshes: a subject's grayordinates are its occipital voxels
plus other brain voxels in scan order, and its own aparc dlabel marks the
occipital ones as lateraloccipital. So every analysis on the surface region
``occipital-aparc`` must equal the same analysis on the MNI study with the
``occipital`` mask, and the planted signal must be found on the vertices.
"""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from brainnet.errors import BrainnetError
from brainnet.study import load_study


@pytest.fixture(scope="module")
def surface(tmp_path_factory):
    from brainnet.datasets.miniature import simulate_released_betas
    from brainnet.released import study_from_released_betas

    root = tmp_path_factory.mktemp("surfaces")
    nod = simulate_released_betas(root / "nod")
    return nod / "sourcedata" / "volume", study_from_released_betas(nod, root / "study")


def test_encoding_on_vertices_equals_the_volume_and_finds_the_planted_signal(surface, tmp_path):
    from brainnet.encoding import encode_subject
    from brainnet.simulate import load_truth

    volume, study = surface
    signal = {tuple(v) for v in load_truth(volume)["signal_ijk"].tolist()}
    for label in ("01", "03"):
        own = encode_subject(study, label, mask="occipital-aparc", n_permutations=10, cv=4,
                             out=tmp_path / "res")
        ref = encode_subject(volume, label, mask="occipital", n_permutations=10, cv=4)
        np.testing.assert_array_equal(own.voxel_scores["r"].to_numpy(), ref.voxel_scores["r"].to_numpy())
        planted = np.array([tuple(v) in signal for v in ref.voxel_scores[["i", "j", "k"]].to_numpy().tolist()])
        assert 0 < planted.sum() < planted.size
        assert own.voxel_scores["r"][planted].mean() > own.voxel_scores["r"][~planted].mean() + 0.3
        # the map is a CIFTI dscalar on the subject's grayordinates, r at the region's vertices
        # a named region other than the default is part of the folder's name
        assert own.path == tmp_path / "res" / f"sub-{label}" / "encode-fc8-occipital-aparc"
        path = own.path / "r_map.dscalar.nii"
        img = nib.load(str(path))
        assert isinstance(img, nib.Cifti2Image)
        cols = own.voxel_scores["i"].to_numpy()
        np.testing.assert_allclose(img.get_fdata()[0, cols], np.nan_to_num(own.voxel_scores["r"].to_numpy()), rtol=1e-6)
        assert not (own.path / "r_map.nii.gz").exists()


def test_decoding_and_rsa_on_vertices_equal_the_volume(surface, tmp_path):
    from brainnet.decoding import decode_units
    from brainnet.plotting import make_figures
    from brainnet.rsa import network_as_subject

    volume, study = surface
    kw = dict(n_permutations=10, n_bootstrap=20, n_cluster_draws=0)
    own = decode_units(study, mask="occipital-aparc", out=tmp_path / "res", **kw)
    ref = decode_units(volume, mask="occipital", **kw)
    np.testing.assert_allclose(own.unit_scores["r"], ref.unit_scores["r"], atol=1e-9)
    # the bootstrap weight maps are surface files: one map per unit on the grayordinates
    weights = next((tmp_path / "res").rglob("weights_z.dscalar.nii"))
    img = nib.load(str(weights))
    n_grayordinates = len(nib.load(str(next((study / "sub-01" / "func").glob("*.dscalar.nii")))).header.get_axis(1))
    assert img.shape == (own.bootstrap_z.shape[0], n_grayordinates)
    assert not list((tmp_path / "res").rglob("weights_z.nii.gz"))
    make_figures(tmp_path / "res", formats=("png",))  # the folder with surface maps passes the figure checks
    rsa_kw = dict(layers=["fc8"], n_permutations=20, n_bootstrap=0)
    own = network_as_subject(study, mask="occipital-aparc", **rsa_kw)
    ref = network_as_subject(volume, mask="occipital", **rsa_kw)
    np.testing.assert_allclose(own.layers["fc8"].network_human_r, ref.layers["fc8"].network_human_r, atol=1e-12)
    assert own.layers["fc8"].network_human_r > 0.1


def test_figures_draw_the_surface_map_on_the_subjects_meshes(surface, tmp_path):
    from brainnet.encoding import encode_subject
    from brainnet.plotting import make_figures

    _, study = surface
    encode_subject(study, "02", mask="occipital-aparc", n_permutations=10, cv=4, out=tmp_path / "res")
    written = make_figures(tmp_path / "res", formats=("png",))
    names = [p.name for p in written]
    assert any("r-map-surface" in n for n in names), names
    png = next(p for p in written if "r-map-surface" in p.name)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(png)
    assert pixels.std() > 0.01  # something is drawn


def test_surface_mistakes_are_one_line_errors(surface, tmp_path):
    from brainnet.encoding import encode_subject

    volume, study = surface
    native = load_study(study)
    with pytest.raises(BrainnetError, match=r"^--mask occipital: an MNI152 volume region, but sub-01's betas are on the surface; "
                                            r"use the subject's own region \(--mask occipital-aparc"):
        encode_subject(study, "01", mask="occipital", n_permutations=10, cv=4, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
    # a parcellation on another mesh (another vertex count)
    other = tmp_path / "other.dlabel.nii"
    dlabel = nib.load(str(next((study / "sub-01" / "anat").glob("*.dlabel.nii"))))
    axis = dlabel.header.get_axis(1)
    left = nib.cifti2.BrainModelAxis.from_mask(np.ones(50, bool), name="CORTEX_LEFT")
    nib.Cifti2Image(np.ones((1, 50), np.float32),
                    header=nib.cifti2.Cifti2Header.from_axes((dlabel.header.get_axis(0), left))).to_filename(str(other))
    n_left = axis.nvertices["CIFTI_STRUCTURE_CORTEX_LEFT"]
    with pytest.raises(BrainnetError, match=rf"other.dlabel.nii: L hemisphere mesh has 50 vertices, the betas' {n_left}; "
                                            r"give a CIFTI mask on the betas' mesh \(a parcellation on the betas' mesh"):
        native.load_subject("01", mask=str(other))
    # mixed surface and volume subjects: refused when the study is opened
    mixed = tmp_path / "mixed"
    shutil.copytree(study, mixed)
    vol_betas = next((volume / "sub-02" / "func").glob("*_betas.nii.gz"))
    for f in (mixed / "sub-02" / "func").glob("*_betas.dscalar.nii"):
        f.unlink()
    shutil.copy2(vol_betas, mixed / "sub-02" / "func" / vol_betas.name.replace("_space-MNI152NLin2009cAsym", "_space-MNI152NLin2009cAsym"))
    with pytest.raises(BrainnetError, match=r"sub-01_task-imagenet_space-fsLR_den-32k_desc-singletrial_betas.dscalar.nii: surface betas, "
                                            r"but sub-02_task-.*_betas.nii.gz is a volume: a study holds one kind; give every subject "
                                            r"surface betas"):
        encode_subject(mixed, "all", mask="occipital-aparc", n_permutations=10, cv=4, out=tmp_path / "never2")
    assert not (tmp_path / "never2").exists()


def test_gifti_betas_joined_into_a_dscalar_give_the_same_patterns(surface, tmp_path):
    from brainnet.surfaces import gifti_to_dscalar, hemisphere_maps, read_surface_betas

    _, study = surface
    betas = next((study / "sub-01" / "func").glob("*_betas.dscalar.nii"))
    data, axis = read_surface_betas(betas)
    img = nib.load(str(betas))
    per_map = [hemisphere_maps(img, index=t) for t in range(data.shape[0])]
    paths = {}
    for hemi in ("L", "R"):
        gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.nan_to_num(m[hemi]), datatype="NIFTI_TYPE_FLOAT32")
                                            for m in per_map])
        paths[hemi] = tmp_path / f"sub-01_hemi-{hemi}_betas.func.gii"
        nib.save(gii, str(paths[hemi]))
    # the vertices outside the original brain models are the medial wall
    wall = np.concatenate([np.isnan(per_map[0][h]) for h in ("L", "R")])
    out = gifti_to_dscalar(paths["L"], paths["R"], tmp_path / "joined.dscalar.nii", medial_wall=wall)
    joined, joined_axis = read_surface_betas(out)
    np.testing.assert_array_equal(joined, data)
    np.testing.assert_array_equal(joined_axis.vertex, axis.vertex)
    with pytest.raises(BrainnetError, match=r"missing.func.gii: GIFTI betas not found; give the subject's left and right"):
        gifti_to_dscalar(tmp_path / "missing.func.gii", paths["R"], tmp_path / "never.dscalar.nii")
    assert not (tmp_path / "never.dscalar.nii").exists()
