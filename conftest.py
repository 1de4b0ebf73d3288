"""Root conftest: pytest requires ``pytest_plugins`` here, not in a sub-directory's conftest.

``pytester`` is how the plugin's own tests run small test files (tests/pytest_plugin/).
"""

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester, minus one warning that only in-process runs see: when the package is
    installed as a regular (or new-style editable) distribution, the inner pytest asks to
    assertion-rewrite ``pytest_edgesim``, which the outer run has already imported."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-W ignore::pytest.PytestAssertRewriteWarning")
    return pytester
