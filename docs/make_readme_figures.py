"""Make the README's figures from a results folder of the embedded demo study.

    brainnet encode --subject 01 --out demo_results
    brainnet decode --out demo_results
    brainnet figures --results demo_results
    python docs/make_readme_figures.py demo_results

writes ``docs/images/overview.png`` (encoding glass brain above the decoding
unit bars) and ``docs/images/first-run.png`` (the glass brain alone), both
downscaled PNGs small enough to keep in the repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).parent / "images"
WIDTH = 900


def _scaled(path: Path, width: int = WIDTH) -> Image.Image:
    im = Image.open(path).convert("RGB")
    return im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)


def main(results: Path) -> None:
    figures = results / "figures"
    glass = _scaled(figures / "sub-01_encode-fc8_r-map-glass.png")
    bars = _scaled(figures / "group_decode-fc8_unit-scores.png")
    overview = Image.new("RGB", (WIDTH, glass.height + bars.height), "white")
    overview.paste(glass, (0, 0))
    overview.paste(bars, (0, glass.height))
    HERE.mkdir(exist_ok=True)
    overview.save(HERE / "overview.png", optimize=True)
    _scaled(figures / "sub-01_encode-fc8_r-map-glass.png", 760).save(
        HERE / "first-run.png", optimize=True
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "brainnet_results"))
