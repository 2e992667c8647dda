"""scripts/render_notebooks.py: the pure parts (relative paths, compact figures, kernel-side cell times)."""
import base64
import importlib.util
import io
from pathlib import Path

import nbformat
import numpy as np
from PIL import Image

_SPEC = importlib.util.spec_from_file_location(
    "render_notebooks", Path(__file__).resolve().parents[1] / "scripts" / "render_notebooks.py")
render = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(render)


def _png_b64(array: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _notebook(text: str, png: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text),
                    nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": text})]
    cell.metadata["execution"] = {"iopub.execute_input": "2026-11-30T10:00:00.000Z",
                                  "iopub.status.idle": "2026-11-30T10:00:02.500Z"}
    return nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("no times")])


def test_relative_paths_replace_the_repository_path_in_every_text_output():
    root = str(render.ROOT)
    nb = _notebook(f"saved {root}/runs/a.pt in {root}", _png_b64(np.zeros((4, 4, 3), np.uint8)))
    assert render.relative_paths(nb) == 4  # two in the stream, two in text/plain
    assert nb.cells[0].outputs[0]["text"] == "saved runs/a.pt in ."
    assert nb.cells[0].outputs[1]["data"]["text/plain"] == "saved runs/a.pt in ."


def test_compact_png_keeps_the_image_and_never_grows():
    gradient = np.dstack([np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))] * 3)  # 64 grey levels
    b64 = _png_b64(gradient)
    small = render.compact_png(b64)
    assert len(small.strip()) <= len(b64)
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(small))).convert("RGB"))
    assert np.array_equal(back, gradient)  # 64 colours fit the 256-colour palette exactly
    nb = _notebook("t", b64)
    render.compact_figures(nb)
    assert nb.cells[0].outputs[1]["data"]["image/png"] == small


def test_cell_seconds_sums_the_kernel_side_times():
    nb = _notebook("t", _png_b64(np.zeros((2, 2, 3), np.uint8)))
    assert render.cell_seconds(nb) == 2.5
