"""Stimulus sets (folder, TSV, BIDS events) and MATLAB-style preprocessing."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainnet.errors import BrainnetError
from brainnet.stimuli import (
    IMAGENET_MEAN_RGB,
    StimulusSet,
    demo_stimuli,
    load_mean_image,
    load_stimuli,
    preprocess_image,
)

FIXTURES = Path("/work/shared/openneuro/fixtures")
MEAN = np.array(IMAGENET_MEAN_RGB, dtype=np.float32)[:, None, None]


def save(path: Path, color=(10, 20, 30), size=(40, 30), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def errmsg(fn, *args, **kwargs) -> str:
    with pytest.raises(BrainnetError) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# ------------------------------------------------------------------ folders


def test_folder_natural_order_and_stems(tmp_path):
    for name in ["img10.png", "img2.jpg", "img1.png", "notes.txt", ".hidden.png"]:
        save(tmp_path / name) if name.endswith((".png", ".jpg")) else (tmp_path / name).write_text("x")
    stim = load_stimuli(tmp_path)
    assert stim.ids == ("img1", "img2", "img10")
    assert stim.files == tuple((tmp_path / n).resolve() for n in ["img1.png", "img2.jpg", "img10.png"])
    assert stim.categories is None and stim.root == tmp_path.resolve() and len(stim) == 3


def test_folder_duplicate_stems_and_empty(tmp_path):
    save(tmp_path / "a.png")
    save(tmp_path / "a.jpg")
    assert errmsg(load_stimuli, tmp_path) == f"{tmp_path}: duplicate stimulus ids ['a']; give every stimulus a unique id"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert errmsg(load_stimuli, empty).startswith(f"{empty}: contains no images (")


def test_folder_symlink_out_is_refused(tmp_path):
    outside = save(tmp_path / "outside" / "x.png")
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "x.png").symlink_to(outside)
    assert "links outside" in errmsg(load_stimuli, folder)


# ------------------------------------------------------------------ TSV


def write_tsv(path: Path, rows, header=("stimulus_id", "file", "category")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


def test_tsv_keeps_row_order_and_categories(tmp_path):
    save(tmp_path / "b.png")
    save(tmp_path / "sub" / "a.png")
    tsv = write_tsv(tmp_path / "stimuli.tsv", [("s2", "b.png", "fear"), ("s1", "sub/a.png", "n/a")])
    stim = load_stimuli(tsv)
    assert stim.ids == ("s2", "s1")
    assert stim.files == ((tmp_path / "b.png").resolve(), (tmp_path / "sub" / "a.png").resolve())
    assert stim.categories == ("fear", None)


def test_tsv_root_rules(tmp_path):
    # files found in the TSV's stimuli/ sub-folder
    save(tmp_path / "stimuli" / "a.png")
    tsv = write_tsv(tmp_path / "list.tsv", [("a", "a.png", "x")])
    assert load_stimuli(tsv).root == (tmp_path / "stimuli").resolve()
    # an explicit root wins
    save(tmp_path / "elsewhere" / "a.png", color=(1, 2, 3))
    stim = load_stimuli(tsv, root=tmp_path / "elsewhere")
    assert stim.files[0] == (tmp_path / "elsewhere" / "a.png").resolve()


def test_tsv_errors(tmp_path):
    save(tmp_path / "a.png")
    dup = write_tsv(tmp_path / "dup.tsv", [("a", "a.png", "x"), ("a", "a.png", "y")])
    assert errmsg(load_stimuli, dup) == f"{dup}: duplicate stimulus ids ['a']; give every stimulus a unique id"
    missing = write_tsv(tmp_path / "missing.tsv", [("a", "a.png", "x"), ("b", "b.png", "x")])
    assert errmsg(load_stimuli, missing) == (
        f"{(tmp_path / 'b.png').resolve()}: image listed in missing.tsv not found; fix the file name "
        "or pass the folder that holds the images as root (--stimuli-root)"
    )
    up = write_tsv(tmp_path / "sub" / "up.tsv", [("a", "../a.png", "x")])
    assert errmsg(load_stimuli, up) == (
        f"{up}: file '../a.png' is not inside {up.parent.resolve()}; give file names relative to that "
        "folder (no absolute paths, '..' or backslashes)"
    )
    absolute = write_tsv(tmp_path / "abs.tsv", [("a", str(tmp_path / "a.png"), "x")])
    assert "is not inside" in errmsg(load_stimuli, absolute)
    (tmp_path / "sub" / "link.png").symlink_to(tmp_path / "a.png")
    link = write_tsv(tmp_path / "sub" / "link.tsv", [("a", "link.png", "x")])
    assert errmsg(load_stimuli, link) == (
        f"{link}: file 'link.png' links outside {link.parent.resolve()} (to {(tmp_path / 'a.png').resolve()}); "
        "copy it into the folder instead of linking to it"
    )
    nothing = tmp_path / "nothing.tsv"
    assert errmsg(load_stimuli, nothing).startswith(f"{nothing}: stimuli not found;")


# ------------------------------------------------------------------ BIDS events


def test_bids_events_from_the_nod_fixture(tmp_path):
    src = FIXTURES / "ds004496"
    if not src.exists():
        pytest.skip("shared OpenNeuro fixtures not available")
    ds = tmp_path / "ds004496"
    shutil.copytree(src, ds)
    events = sorted(ds.glob("sub-01/ses-imagenet01/func/*run-01_events.tsv"))[0]
    import pandas as pd

    values = pd.read_csv(events, sep="\t")["stim_file"].tolist()
    for v in values:
        save(ds / "stimuli" / v)
    stim = load_stimuli(events)
    assert stim.ids == tuple(dict.fromkeys(values))  # unique, first appearance
    assert stim.root == (ds / "stimuli").resolve()
    assert all(f.is_file() for f in stim.files)


def test_events_column_choice_and_na(tmp_path):
    (tmp_path / "dataset_description.json").write_text("{}")
    for name in ["dog.jpg", "cat.jpg"]:
        save(tmp_path / "stimuli" / name)
    events = write_tsv(
        tmp_path / "sub-01" / "func" / "sub-01_task-x_events.tsv",
        [("0", "1", "cat.jpg", "x"), ("3", "1", "n/a", "y"), ("6", "1", "dog.jpg", "z"), ("9", "1", "cat.jpg", "x")],
        header=("onset", "duration", "file_path", "other"),
    )
    stim = load_stimuli(events)
    assert stim.ids == ("cat.jpg", "dog.jpg")
    assert errmsg(load_stimuli, events, column="nope") == (
        f"{events}: has no column 'nope' (columns: onset, duration, file_path, other); choose --column among them"
    )
    none = write_tsv(tmp_path / "x_events.tsv", [("0", "1")], header=("onset", "duration"))
    assert "has no stimulus column (looked for stim_file, file_path, ImgName, identifier, stimulus)" in errmsg(load_stimuli, none)


def test_stimulus_set_checks():
    with pytest.raises(BrainnetError, match="duplicate stimulus ids"):
        StimulusSet(("a", "a"), (Path("/x"), Path("/y")))
    stim = StimulusSet(("a", "b"), (Path("/x"), Path("/y")), ("c1", "c2"))
    sub = stim.subset(["b"])
    assert sub.ids == ("b",) and sub.categories == ("c2",)


# ------------------------------------------------------------------ preprocessing


def test_constant_image_is_colour_minus_imagenet_mean(tmp_path):
    path = save(tmp_path / "c.png", color=(200, 100, 50), size=(300, 200))
    x = preprocess_image(path)
    assert x.shape == (3, 227, 227) and x.dtype == np.float32
    np.testing.assert_allclose(x, np.array([200, 100, 50], np.float32)[:, None, None] - MEAN + 0 * x, atol=1e-4)


def test_resize_ignores_aspect_and_keeps_orientation(tmp_path):
    arr = np.zeros((100, 400, 3), np.uint8)
    arr[:, :200] = 255  # left half white
    path = tmp_path / "wide.png"
    Image.fromarray(arr).save(path)
    x = preprocess_image(path) + MEAN
    assert x[:, :, :100].min() > 250 and x[:, :, 127:].max() < 5  # left half still white, not cropped


def test_modes_all_give_rgb_227(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(50, 60, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    paths = {}
    paths["gray"] = tmp_path / "gray.png"
    Image.fromarray(gray, "L").save(paths["gray"])
    paths["cmyk"] = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(paths["cmyk"])
    paths["sixteen"] = tmp_path / "sixteen.png"
    Image.fromarray(gray.astype(np.uint16) * 257).save(paths["sixteen"])
    paths["palette"] = tmp_path / "palette.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(paths["palette"], transparency=0)
    paths["alpha"] = tmp_path / "alpha.png"
    Image.fromarray(np.dstack([rgb, np.full((50, 60), 7, np.uint8)]), "RGBA").save(paths["alpha"])
    paths["la"] = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, gray]), "LA").save(paths["la"])
    paths["bilevel"] = tmp_path / "bilevel.png"
    Image.fromarray(gray > 128).save(paths["bilevel"])
    paths["rgb"] = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(paths["rgb"])
    out = {k: preprocess_image(p) for k, p in paths.items()}
    for x in out.values():
        assert x.shape == (3, 227, 227) and x.dtype == np.float32 and np.isfinite(x).all()
    g = out["gray"] + MEAN
    np.testing.assert_allclose(g[0], g[1], atol=1e-4)
    np.testing.assert_allclose(g[1], g[2], atol=1e-4)
    np.testing.assert_allclose(out["sixteen"], out["gray"], atol=1e-4)  # 16-bit rescaled, not clipped
    np.testing.assert_allclose(out["alpha"], out["rgb"], atol=1e-4)  # alpha dropped
    np.testing.assert_allclose(out["la"], out["gray"], atol=1e-4)
    assert np.abs(out["cmyk"] - out["rgb"]).mean() < 10  # lossy JPEG + CMYK round trip


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (30, 30), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    x = preprocess_image(path) + MEAN
    assert x[0].mean() > 250 and x[2].mean() < 5


def test_mean_image_files(tmp_path):
    rng = np.random.default_rng(1)
    mean = rng.uniform(0, 255, size=(227, 227, 3)).astype(np.float32)
    np.save(tmp_path / "mean.npy", mean)
    np.save(tmp_path / "mean_chw.npy", mean.transpose(2, 0, 1))
    # emonet-py img_mean.txt: one line per image row, the R, G, B rows comma-separated
    lines = [",".join(f"{v:.6f}" for c in range(3) for v in mean[h, :, c]) for h in range(227)]
    (tmp_path / "img_mean.txt").write_text("\n".join(lines) + "\n")
    for name in ["mean.npy", "mean_chw.npy", "img_mean.txt"]:
        np.testing.assert_allclose(load_mean_image(tmp_path / name), mean, atol=1e-5)
    img = save(tmp_path / "c.png", color=(90, 80, 70))
    x = preprocess_image(img, mean_image=tmp_path / "img_mean.txt")
    np.testing.assert_allclose(x, np.array([90, 80, 70], np.float32)[:, None, None] - mean.transpose(2, 0, 1), atol=1e-4)
    np.save(tmp_path / "bad.npy", np.zeros((10, 10)))
    assert errmsg(load_mean_image, tmp_path / "bad.npy") == (
        f"{tmp_path / 'bad.npy'}: mean image has shape (10, 10), expected (227, 227, 3); "
        "give a .npy of shape (227, 227, 3) or emonet-py's img_mean.txt"
    )


def test_bad_images_give_one_line_errors(tmp_path):
    fix = "replace or remove this image"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert errmsg(preprocess_image, empty) == f"{empty}: empty file (0 bytes); {fix}"
    text = tmp_path / "text.png"
    text.write_text("this is not an image\n")
    assert errmsg(preprocess_image, text) == f"{text}: not an image Pillow can read; {fix}"
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert errmsg(preprocess_image, truncated) == f"{truncated}: corrupt or truncated image (OSError); {fix}"
    corrupt = tmp_path / "corrupt.png"
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)).save(png, "PNG")
    data = bytearray(png.getvalue())
    mid = len(data) // 2
    data[mid : mid + 64] = b"\xff" * 64  # damage the compressed pixel data
    corrupt.write_bytes(bytes(data))
    assert errmsg(preprocess_image, corrupt).startswith(f"{corrupt}: corrupt or truncated image (")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)  # 100 Mpx of zeros, a few kB on disk
    assert bomb.stat().st_size < 100_000
    assert errmsg(preprocess_image, bomb) == (
        f"{bomb}: image is too large (decompression bomb protection); downscale it below 89 megapixels"
    )
    missing = tmp_path / "missing.png"
    assert errmsg(preprocess_image, missing) == f"{missing}: image not found or unreadable; check the stimulus file name"


def test_demo_stimuli_are_deterministic_and_varied(tmp_path):
    a = demo_stimuli(8, tmp_path / "a")
    b = demo_stimuli(8, tmp_path / "b")
    assert a.ids == b.ids and len(a) == 8
    assert all(fa.read_bytes() == fb.read_bytes() for fa, fb in zip(a.files, b.files, strict=True))
    xs = np.stack([preprocess_image(f) for f in a.files])
    assert len({x.tobytes() for x in xs}) == 8 and xs.std(axis=0).mean() > 10
