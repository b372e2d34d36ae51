"""Every operator `operators` exports draws itself as a marble diagram, as RxPY's do."""

from __future__ import annotations

import inspect
import re

import pytest

import operators


@pytest.mark.parametrize("name", operators.__all__)
def test_each_exported_operator_has_a_marble_diagram(name: str) -> None:
    doc = inspect.getdoc(getattr(operators, name)) or ""
    assert ".. marble::" in doc
    diagram = doc.split(".. marble::")[1]
    assert re.search(rf"^\s*\[\s*{name}\(", diagram, re.MULTILINE)  # the operator, drawn
