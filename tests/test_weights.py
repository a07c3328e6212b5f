"""Weights files: bad files give one-line errors; fetch downloads and verifies them."""

from __future__ import annotations

import functools
import http.server
import json
import os
import pickle
import threading
from pathlib import Path

import pytest
import torch

from brainnet.cli import main
from brainnet.errors import BrainnetError
from brainnet.models.weights import (
    _table,
    fetch_weights,
    load_emonet,
    untrained_state_dict,
    weights_manifest,
)

FETCH_FIX = "download it again with 'brainnet fetch weights' or give another --weights file"


def tiny_state(fmt: str) -> dict:
    """A state dict with the right keys of ``fmt`` but 1-element tensors."""
    return {key: torch.zeros(1) for key in _table()[fmt]}


def expect_error(path: Path, message: str) -> None:
    with pytest.raises(BrainnetError) as info:
        load_emonet(path)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_missing_and_empty_files(tmp_path):
    missing = tmp_path / "nope.pt"
    expect_error(missing, f"{missing}: weights file not found; check the --weights path or run 'brainnet fetch weights'")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    expect_error(empty, f"{empty}: weights file is empty (0 bytes); {FETCH_FIX}")


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    expect_error(path, f"{path}: holds a Tensor, not a state dict; save the weights with torch.save(model.state_dict(), path)")


class _Payload:
    """Unpickling this would create a marker file: weights_only must refuse it first."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": _Payload(str(marker))}, fh)
    expect_error(
        path,
        f"{path}: refused: the file contains pickled Python objects, not only tensors "
        "(loaded with weights_only=True, nothing was executed); use a plain state dict (emonet-pytorch or emonet-py weights)",
    )
    assert not marker.exists()
    path2 = tmp_path / "evil_zip.pt"
    torch.save({"fn": os.getcwd}, path2)
    with pytest.raises(BrainnetError, match="refused: the file contains pickled Python objects"):
        load_emonet(path2)


def test_wrong_keys(tmp_path):
    state = tiny_state("emonet-py")
    state["fc9.weight"], state["fc9.bias"] = state.pop("fc3.weight"), state.pop("fc3.bias")
    path = tmp_path / "keys.pth"
    torch.save(state, path)
    expect_error(
        path,
        f"{path}: not EmoNet weights (closest layout emonet-py: missing keys ['fc3.bias', 'fc3.weight'], "
        "unexpected keys ['fc9.bias', 'fc9.weight']); give the emonet-pytorch (conv_0 ... classifier) "
        "or emonet-py (conv1 ... fc3) state dict",
    )


@pytest.mark.parametrize(
    ("fmt", "key", "expected"),
    [("emonet-py", "conv1.weight", (96, 3, 11, 11)), ("emonet-pytorch", "conv_0.0.weight", (96, 3, 11, 11))],
)
def test_wrong_shapes(tmp_path, fmt, key, expected):
    path = tmp_path / "shapes.pt"
    torch.save(tiny_state(fmt), path)
    expect_error(path, f"{path}: {key} has shape (1,) but {fmt} EmoNet needs {expected}; these are weights of another network; give EmoNet weights")


def test_truncated_and_garbage_files(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(tiny_state("emonet-py"), good)
    data = good.read_bytes()
    for name, content in [("half.pt", data[: len(data) // 2]), ("head.pt", data[:10]), ("text.pt", b"hello, not weights\n")]:
        path = tmp_path / name
        path.write_bytes(content)
        expect_error(path, f"{path}: not a readable PyTorch weights file (truncated or corrupt); {FETCH_FIX}")


def test_nan_weights_rejected(tmp_path):
    # keys are checked in layer order, so only the first tensor needs its real shape
    state = tiny_state("emonet-py")
    state["conv1.weight"] = torch.zeros(96, 3, 11, 11)
    state["conv1.weight"][5, 1, 2, 3] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    expect_error(path, f"{path}: conv1.weight contains NaN or Inf; {FETCH_FIX}")


def test_manifest_lists_every_public_file():
    entries = {e["name"]: e for e in weights_manifest()}
    assert {"emonet-pytorch", "emonet-py", "emonet-matlab"} <= set(entries)
    for entry in entries.values():
        assert {"name", "format", "url", "size", "sha256", "licence", "source", "filename"} <= set(entry)
        assert entry["url"].startswith("https://")
    assert entries["emonet-pytorch"]["url"] == "https://osf.io/amdju/download"


# ------------------------------------------------------------------ fetch


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving a folder; yields (folder, base url)."""
    folder = tmp_path_factory.mktemp("www")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _pytorch_layout(state: dict) -> dict:
    out = {}
    for i in range(5):
        for p in ("weight", "bias"):
            out[f"conv_{i}.0.{p}"] = state[f"conv{i + 1}.0.{p}"]
    out["conv_5.0.weight"] = state["fc6.1.weight"].reshape(4096, 256, 6, 6)
    out["conv_5.0.bias"] = state["fc6.1.bias"]
    out["conv_6.0.weight"] = state["fc7.0.weight"][:, :, None, None]
    out["conv_6.0.bias"] = state["fc7.0.bias"]
    out["classifier.0.weight"] = state["fc8.0.weight"][:, :, None, None]
    out["classifier.0.bias"] = state["fc8.0.bias"]
    return out


def test_fetch_weights_downloads_verifies_and_loads(served, tmp_path, monkeypatch, capsys):
    folder, base = served
    reference = untrained_state_dict(4)
    torch.save(_pytorch_layout(reference), folder / "emonet.pt")
    dest = tmp_path / "cache"
    code = main(["fetch", "weights", "--dest", str(dest), "--url", f"{base}/emonet.pt", "--quiet"])
    out = capsys.readouterr().out.strip()
    path = Path(out)
    assert code == 0 and path.parent == dest and path.is_file()
    model, weights_id = load_emonet(path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.items())
    assert weights_id.startswith("sha256:")
    assert [p.name for p in dest.iterdir()] == [path.name]  # no temporary files left


def test_fetch_rejects_a_file_that_is_not_emonet(served, tmp_path):
    folder, base = served
    torch.save(tiny_state("emonet-pytorch"), folder / "not_emonet.pt")
    with pytest.raises(BrainnetError, match=r"^downloaded file rejected and deleted: .*conv_0\.0\.weight has shape \(1,\)"):
        fetch_weights("emonet-pytorch", tmp_path, url=f"{base}/not_emonet.pt", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_fetch_unknown_name_is_a_cli_error(capsys):
    code = main(["fetch", "weights", "--which", "emonet-matlab"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "brainnet fetch: error: --which emonet-matlab: unknown weights; choose one of emonet-pytorch, emonet-py\n"


def test_manifest_file_is_valid_json():
    path = Path(__file__).resolve().parents[1] / "data_manifests" / "weights.json"
    data = json.loads(path.read_text())
    assert "No sha256 or size is published" in data["description"]
