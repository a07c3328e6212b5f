"""Paired permutation comparisons between regions and between layers (brainnet.contrasts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainnet.contrasts import (
    contrast_decoding,
    contrast_encoding,
    contrast_rsa,
    contrast_table,
    paired_contrast_test,
)
from brainnet.errors import BrainnetError
from brainnet.permutation import permutation_indices


def _correlation_side(x: np.ndarray, y: np.ndarray):
    """Batched statistic: mean over voxels of r(x[perm], y), x (n,), y (n, v)."""
    xs = (x - x.mean()) / x.std()
    ys = (y - y.mean(axis=0)) / y.std(axis=0)

    def statistic(perms: np.ndarray) -> np.ndarray:
        return (xs[perms] @ ys / x.size).mean(axis=1)

    return statistic


def _sides(rng, n, v, slopes):
    x = rng.standard_normal(n)
    return x, {f"s{i}": _correlation_side(x, b * x[:, None] + rng.standard_normal((n, v)))
               for i, b in enumerate(slopes)}


# -- agreement with a brute-force reference ------------------------------------


def test_agrees_with_a_naive_loop_over_permutations():
    """Each permutation recomputed from scratch (np.corrcoef), p-values counted by hand."""
    rng = np.random.default_rng(0)
    n, v, n_perm, seed = 7, 3, 40, 11
    x = rng.standard_normal(n)
    ys = {name: b * x[:, None] + rng.standard_normal((n, v)) for name, b in (("a", 1.0), ("b", 0.2), ("c", 0.0))}
    result = paired_contrast_test({k: _correlation_side(x, y) for k, y in ys.items()}, n,
                                  n_permutations=n_perm, seed=seed, batch_size=3)

    def naive(perm):
        return [np.mean([np.corrcoef(x[perm], y[:, j])[0, 1] for j in range(v)]) for y in ys.values()]

    observed = np.array(naive(np.arange(n)))
    null = np.array([naive(permutation_indices(n, k, k + 1, seed)[0]) for k in range(n_perm)])
    np.testing.assert_allclose(result.observed, observed, atol=1e-12)
    np.testing.assert_allclose(result.null, null, atol=1e-12)
    pairs = [(0, 1), (0, 2), (1, 2)]
    standard, standard_null = [], []
    for i, j in pairs:
        d, dn = observed[i] - observed[j], null[:, i] - null[:, j]
        mean, sd = dn.mean(), dn.std(ddof=1)
        standard.append((d - mean) / sd)
        standard_null.append((dn - mean) / sd)
    standard, standard_null = np.array(standard), np.array(standard_null).T
    p = [(1 + sum(abs(standard_null[k, m]) >= abs(standard[m]) for k in range(n_perm))) / (n_perm + 1)
         for m in range(3)]
    p_fwe = [(1 + sum(max(abs(standard_null[k])) >= abs(standard[m]) for k in range(n_perm))) / (n_perm + 1)
             for m in range(3)]
    table = result.table
    assert list(table["pair"]) == ["a - b", "a - c", "b - c"]
    np.testing.assert_allclose(table["effect_vs_null"], standard, rtol=1e-9)
    np.testing.assert_allclose(table["p"], p, rtol=1e-12)
    np.testing.assert_allclose(table["p_fwe"], p_fwe, rtol=1e-12)
    order = np.argsort(p)  # Holm by hand
    holm = np.maximum.accumulate(np.array(p)[order] * (3 - np.arange(3)))
    np.testing.assert_allclose(table["p_holm"].to_numpy()[order], np.minimum(holm, 1), rtol=1e-12)


def test_one_sided_alternative_and_chosen_pairs():
    observed = np.array([0.5, 0.1, 0.3])
    null = np.random.default_rng(1).normal(0, 0.1, (99, 3))
    greater = contrast_table(observed, null, ["a", "b", "c"], pairs=[("a", "b")], alternative="greater")
    less = contrast_table(observed, null, ["a", "b", "c"], pairs=[("a", "b")], alternative="less")
    assert list(greater["pair"]) == ["a - b"]
    assert greater["p"].iloc[0] < 0.05 < less["p"].iloc[0]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: paired_contrast_test({"a": lambda p: p[:, 0]}, 4),
     "got 1 side(s) to compare; give at least two regions or two layers"),
    (lambda: contrast_table(np.zeros(2), np.zeros((5, 2)), ["a", "b"], pairs=[("a", "a")]),
     "pairs: ('a', 'a') is not two different sides; choose from a, b"),
    (lambda: contrast_table(np.zeros(2), np.zeros((5, 3)), ["a", "b"]),
     "observed (2,) and null (5, 3) do not match 2 sides; give observed (n_sides,) and null (n_permutations, n_sides)"),
    (lambda: contrast_table(np.zeros(2), np.zeros((5, 2)), ["a", "b"], alternative="up"),
     "alternative 'up' is unknown; use two-sided, greater or less"),
])
def test_bad_arguments_are_refused_in_one_line(call, message):
    with pytest.raises(BrainnetError) as info:
        call()
    assert str(info.value) == message


# -- null calibration ----------------------------------------------------------


def _rates(slopes, n_studies, n=20, v=5, n_perm=99):
    p, fwe, holm, effect = [], [], [], []
    for seed in range(n_studies):
        _, sides = _sides(np.random.default_rng(seed), n, v, slopes)
        table = paired_contrast_test(sides, n, n_permutations=n_perm, seed=seed).table
        p.append(table["p"].iloc[0] < 0.05)
        fwe.append(bool((table["p_fwe"] < 0.05).any()))
        holm.append(bool((table["p_holm"] < 0.05).any()))
        effect.append(table["effect_vs_null"].iloc[0])
    return np.mean(p), np.mean(fwe), np.mean(holm), np.array(effect)


def test_no_signal_on_either_side_rejects_at_alpha(science_scale):
    """The sharp null (stimulus labels carry nothing on any side): p and p_fwe reject in 2-8 %."""
    n_studies = 600 if science_scale == "full" else 250
    p, fwe, holm, effect = _rates((0.0, 0.0, 0.0), n_studies)
    assert 0.02 <= p <= 0.08, p
    assert 0.02 <= fwe <= 0.08, fwe  # family-wise over the 3 pairs
    assert holm <= 0.08, holm
    assert abs(effect.mean()) < 0.2 and 0.8 < effect.std() < 1.2, (effect.mean(), effect.std())


def test_equal_signal_on_both_sides_does_not_reject_more_than_alpha(science_scale):
    """Equal non-zero signal is not the sharp null: the test is conservative there (measured, not exact)."""
    n_studies = 600 if science_scale == "full" else 200
    p, fwe, holm, _ = _rates((0.5, 0.5, 0.5), n_studies)
    assert p <= 0.08 and fwe <= 0.08 and holm <= 0.08, (p, fwe, holm)


@pytest.mark.slow
def test_equal_signal_on_two_sides_of_other_sizes_is_not_anticonservative():
    p, fwe, holm, _ = _rates((0.3, 0.3), 800, n=30, v=8)
    assert p <= 0.08 and fwe <= 0.08, (p, fwe)


def test_planted_difference_is_found():
    found = []
    for seed in range(20):
        _, sides = _sides(np.random.default_rng(seed), 30, 5, (1.0, 0.0))
        table = paired_contrast_test(sides, 30, n_permutations=99, seed=seed).table
        found.append(table["p"].iloc[0] < 0.05 and table["difference"].iloc[0] > 0)
    assert np.mean(found) >= 0.9, np.mean(found)


# -- study level ---------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Signal only in occipital voxels (the simulator's truth); inferotemporal carries none."""
    from brainnet.simulate import simulate_study

    return simulate_study(tmp_path_factory.mktemp("contrast") / "study", n_subjects=4, n_stimuli=40, seed=3,
                          snr=1.0)


def test_decode_finds_the_region_with_signal_and_each_side_is_decodes_own_test(planted):
    from brainnet.decoding import unit_decoding
    from brainnet.study import load_study

    result = contrast_decoding(planted, mask="occipital,inferotemporal", n_components=3, n_permutations=49, seed=2)
    row = result.table.iloc[0]
    assert row["pair"] == "occipital - inferotemporal"
    assert row["difference"] > 0 and row["effect_vs_null"] > 1.5 and row["p"] <= 0.05, row.to_dict()
    # the occipital side is exactly decode's statistic and null under the same seed
    data = load_study(planted).load_subjects(None, mask="occipital")
    feats = load_study(planted).features(layers=("fc8",))
    averaged = [d.averaged() for d in data]
    alone = unit_decoding([a[0] for a in averaged], [a[1] for a in averaged], feats.layer("fc8"),
                          feats.stimulus_ids, n_components=3, n_permutations=49, n_bootstrap=0,
                          confusion=False, seed=2)
    assert result.observed[0] == pytest.approx(alone.summary["mean_r"], abs=1e-12)
    np.testing.assert_allclose(result.null[:, 0], alone.null[:, 0], atol=1e-10)


def test_encode_finds_the_region_with_signal_and_matches_encode(planted):
    from brainnet.encoding import encode_subject

    result = contrast_encoding(planted, "01", mask="occipital,inferotemporal", n_permutations=49, seed=1)
    row = result.table.iloc[0]
    assert row["difference"] > 0 and row["p"] <= 0.05, row.to_dict()
    alone = encode_subject(planted, "01", mask="inferotemporal", n_permutations=49, seed=1)
    # The same ridge solves in other batch shapes (sized for the larger side) and, on a busy machine,
    # other BLAS blockings: equal up to rounding amplified by the penalty grid's conditioning
    # (5e-9 seen under load), so 1e-6, four orders below the null's spread.
    assert result.observed[1] == pytest.approx(alone.summary["mean_r"], abs=1e-6)
    np.testing.assert_allclose(result.null[:, 1], np.nanmean(alone.null, axis=1), rtol=0, atol=1e-6)
    assert np.std(result.null[:, 1]) > 1e-3


def test_rsa_regions_and_layers_and_matches_rsa(planted):
    from brainnet.rsa import network_as_subject

    regions = contrast_rsa(planted, mask="occipital,inferotemporal", n_permutations=99, seed=4)
    row = regions.table.iloc[0]
    assert row["difference"] > 0 and row["p"] <= 0.05, row.to_dict()
    alone = network_as_subject(planted, mask="inferotemporal", n_permutations=99, n_bootstrap=0, seed=4)
    assert regions.observed[1] == pytest.approx(alone.layers["fc8"].network_human_r, abs=1e-12)
    np.testing.assert_allclose(regions.null[:, 1], alone.layers["fc8"].null, atol=1e-12)
    layers = contrast_rsa(planted, layers="fc6,fc7,fc8", n_permutations=49, seed=4)
    assert list(layers.table["pair"]) == ["fc6 - fc7", "fc6 - fc8", "fc7 - fc8"]
    assert (layers.table["p_fwe"] >= layers.table["p"]).all() and (layers.table["p_holm"] >= layers.table["p"]).all()
    assert len(repr(layers)) <= 1000


def test_cli_writes_the_comparison_table_with_provenance(planted, tmp_path, capsys):
    import pandas as pd

    from brainnet.cli import main

    out = tmp_path / "out"
    assert main(["contrast", "rsa", "--study", str(planted), "--mask", "occipital,inferotemporal",
                 "--permutations", "19", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "occipital - inferotemporal:" in printed and "p_FWE" in printed
    folder = out / "group" / "contrast-rsa-occipital_vs_inferotemporal"
    table = pd.read_csv(folder / "contrasts.tsv", sep="\t")
    assert list(table.columns) == ["pair", "side_a", "side_b", "stat_a", "stat_b", "difference", "null_mean",
                                   "null_sd", "effect_vs_null", "p", "p_fwe", "p_holm"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["analysis"] == "contrast-rsa" and summary["n_permutations"] == 19
    assert summary["complete"] is True
    assert summary["provenance"]["parameters"]["sides"] == ["occipital", "inferotemporal"]
    assert summary["provenance"]["seed"] == 0 and summary["provenance"]["study"]
    assert [m["name"] for m in summary["provenance"]["mask"]] == ["occipital", "inferotemporal"]
    # Other parameters in the same folder: refused before any subject is loaded, the parameter named.
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    from brainnet.study import Study

    def no_loading(*args, **kwargs):
        raise AssertionError("subject data loaded before the folder was checked")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Study, "load_subjects", no_loading)
        assert main(["contrast", "rsa", "--study", str(planted), "--mask", "occipital,inferotemporal",
                     "--permutations", "29", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"brainnet contrast: error: {folder}: holds results made with other parameters, weights or "
                       "data; choose another --out folder or pass --overwrite"), err
    assert any(f"{folder}: n_permutations=19 there, 29 in this run" in line for line in err), err
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_regions_and_layers_both_several_is_refused(planted):
    with pytest.raises(BrainnetError) as info:
        contrast_rsa(planted, mask="occipital,v1", layers="fc7,fc8")
    assert str(info.value) == ("--mask and --layers both list several; compare regions (one layer) or layers "
                               "(one region)")
