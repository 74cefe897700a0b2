"""Which conda specs a local build bounds to NumPy 1.x, and why."""

from __future__ import annotations

import pytest
from byom.core.environments import parse_conda
from byom.core.numpy_abi import numpy_bounds


def added(conda: str) -> list[str]:
    return [b.requirement for b in numpy_bounds(parse_conda(conda)[2])]


@pytest.mark.parametrize("pin", ["scikit-learn=1.2.2", "scikit-learn=1.2", "scikit-learn<1.4", "pandas==1.5.3",
                                 "conda-forge::scipy=1.10.1"])
def test_an_old_compiled_pin_with_numpy_free_gets_numpy_below_2(pin: str) -> None:
    assert added(f"dependencies:\n  - python=3.11\n  - {pin}\n") == ["numpy<2"]


@pytest.mark.parametrize("pin", ["scikit-learn=1.5", "scikit-learn", "scikit-learn>=1.0", "scikit-learn>=1.0,<1.5",
                                 "joblib=1.2", "pandas=2.2.3"])
def test_a_pin_that_admits_a_numpy_2_release_is_left_alone(pin: str) -> None:
    assert added(f"dependencies:\n  - python=3.11\n  - {pin}\n") == []


def test_a_spec_that_names_numpy_keeps_its_own_choice() -> None:
    assert added("dependencies:\n  - scikit-learn=1.2.2\n  - pip:\n    - numpy>=2\n") == []


def test_the_reason_names_every_old_pin() -> None:
    [bound] = numpy_bounds(["scikit-learn==1.2.2", "scipy==1.10.1", "-r extra.txt", "git+https://x/y"])
    assert "scikit-learn==1.2.2, scipy==1.10.1 were built against NumPy 1.x" in bound.reason
