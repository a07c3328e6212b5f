"""Result records display briefly: ``repr`` under 1,000 characters, an HTML summary in notebooks."""

from __future__ import annotations

import numpy as np
import pytest

from brainnet._display import MAX_REPR
from brainnet.decoding import unit_decoding
from brainnet.encoding import encode
from brainnet.naturalistic import encode_naturalistic
from brainnet.permutation import permutation_test


@pytest.fixture(scope="module")
def records():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3000))
    patterns = [rng.normal(size=(40, 200)) for _ in range(4)]
    ids = [f"s{i}" for i in range(40)]
    return {
        "encode": encode(x, y, n_permutations=50),
        "decode": unit_decoding(patterns, [ids] * 4, rng.normal(size=(40, 20)), ids, n_components=2,
                                n_permutations=30, n_bootstrap=5, confusion=False),
        "permutation": permutation_test(lambda idx: idx[:, :3].astype(float), 40, n_permutations=500),
        "naturalistic": encode_naturalistic(rng.normal(size=(120, 500)), rng.normal(size=(120, 2)),
                                            frame_rate=1, tr=1, gap_s=10),
    }


def test_every_record_prints_its_headline_in_under_1000_characters(records):
    for name, record in records.items():
        text = repr(record)
        assert len(text) <= MAX_REPR, (name, len(text))
        assert text.startswith(type(record).__name__ + "("), name
        assert "array(" not in text, name  # arrays appear as shapes, not values
    enc = records["encode"]
    assert f"mean_r={enc.summary['mean_r']:.4g}" in repr(enc)
    assert "null: ndarray (50, 3000)" in repr(enc)


def test_every_record_renders_an_html_summary_table(records):
    for name, record in records.items():
        page = record._repr_html_()
        assert page.startswith("<div><strong>" + type(record).__name__) and "<table>" in page, name
        assert len(page) < 20_000, name
