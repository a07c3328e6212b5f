"""Every notebook in notebooks/ runs top to bottom on the embedded study."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code")


def test_notebooks_are_up_to_date_with_their_builder(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", NOTEBOOKS[0].parent / "build_notebooks.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    import nbformat

    build.HERE = tmp_path
    build.main()  # sources only; the committed files also hold outputs

    def sources(nb):
        return [(c.id, c.cell_type, c.source) for c in nb.cells]

    for path in NOTEBOOKS:
        fresh = nbformat.read(tmp_path / path.name, as_version=4)
        committed = nbformat.read(path, as_version=4)
        assert sources(fresh) == sources(committed), (
            f"{path.name} differs from build_notebooks.py: rerun python notebooks/build_notebooks.py --execute"
        )


def test_notebooks_are_committed_with_their_outputs():
    """Every code cell ran (outputs saved); the quick start shows figures inline."""
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code), path.name
        assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"], path.name
    quickstart = nbformat.read(NOTEBOOKS[0], as_version=4)
    images = [o for c in quickstart.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2
