"""The notebooks run top to bottom on this machine (a failing cell fails the suite), and the
committed ones carry the outputs of such a run — every plot cell with its image — so they
read well on a code host. Executing works on a copy in memory: the files are never rewritten.

They run in a kernel of a fresh venv holding the installed wheel (`live-listener[backend]`),
not this checkout: a notebook can use only what a user gets (tests/wheel.py).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.wheel import KERNEL

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds for one cell
NOTEBOOK_TIMEOUT = 240  # seconds for a whole notebook, kernel start included
# a call that draws: pyplot, an explore.plot_* helper, or an Axes plotting method
DRAWS = re.compile(
    r"\bplt\.|\bplot_\w+\(|\.(?:plot|bar|barh|broken_barh|hist|stairs|step|scatter|"
    r"eventplot|imshow|fill_between|stem)\("
)


def read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def plot_cells(notebook: Any) -> list[tuple[int, Any]]:
    return [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and DRAWS.search(cell.source)
    ]


def has_image(cell: Any) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


def errors(notebook: Any) -> list[str]:
    return [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "error"
    ]


def execute(notebook: Any) -> None:
    """Run every cell in a fresh kernel of the installed wheel whose cwd is notebooks/ (so
    `import explore` works)."""
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    ).execute()  # raises CellExecutionError, naming the cell, when one fails


def test_the_three_notebooks_are_there() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_reconnection.ipynb",
        "03_custom_operator.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_committed_notebook_is_a_complete_run_with_its_plots(path: Path) -> None:
    notebook = read(path)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "This notebook shows" in first.source
    # executed top to bottom in one kernel, no cell skipped, none failed
    counts = [cell.execution_count for cell in code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1))
    assert errors(notebook) == []
    plots = plot_cells(notebook)
    assert plots, "every notebook plots something"
    assert [index for index, cell in plots if not has_image(cell)] == []


@pytest.mark.timeout(NOTEBOOK_TIMEOUT, func_only=True)  # installing the wheel is not timed
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
@pytest.mark.usefixtures("full_install")
def test_the_notebook_runs_top_to_bottom(path: Path) -> None:
    committed = hashlib.sha256(path.read_bytes()).hexdigest()
    notebook = read(path)

    execute(notebook)

    assert errors(notebook) == []
    assert [index for index, cell in plot_cells(notebook) if not has_image(cell)] == []
    assert hashlib.sha256(path.read_bytes()).hexdigest() == committed


@pytest.mark.timeout(NOTEBOOK_TIMEOUT, func_only=True)
@pytest.mark.usefixtures("full_install")
def test_a_failing_cell_fails_the_run() -> None:
    notebook = nbformat.v4.new_notebook(  # type: ignore[no-untyped-call]
        cells=[
            nbformat.v4.new_code_cell("from explore import Levels"),  # type: ignore[no-untyped-call]
            nbformat.v4.new_code_cell("1 / 0"),  # type: ignore[no-untyped-call]
        ]
    )
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute(notebook)


def test_a_plot_cell_without_its_image_is_caught() -> None:
    notebook = nbformat.v4.new_notebook(  # type: ignore[no-untyped-call]
        cells=[
            nbformat.v4.new_code_cell("x = 1"),  # type: ignore[no-untyped-call]
            nbformat.v4.new_code_cell("fig, ax = plt.subplots()\nplot_phases(ax, spans)"),  # type: ignore[no-untyped-call]
        ]
    )
    assert [index for index, _ in plot_cells(notebook)] == [1]
    assert not has_image(notebook.cells[1])
