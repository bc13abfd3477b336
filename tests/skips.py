"""The skips ``./run test`` cannot prevent: it installs Chromium, poppler and a CJK font, so a test skipped for
want of them fails under it (``YIZHAN_STRICT_SKIPS``, set by ``./run test``), but it cannot bring the shared
OpenStreetMap extract to a bare clone, nor mount a file system for a user who is not root. Those skips go through
``skip_not_provided`` and stay skips."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

NOT_PROVIDED = "not provided by ./run test: "
"""The start of the reason of a skip ``./run test`` cannot prevent."""


def skip_not_provided(reason: str) -> NoReturn:
    """Skip the test for something ``./run test`` cannot provide (``reason`` says what)."""
    pytest.skip(NOT_PROVIDED + reason)


def refused(report: Any) -> bool:
    """Whether a test's report is a skip that fails under ``./run test`` (``YIZHAN_STRICT_SKIPS`` set): any skip but
    an expected failure's and those of ``skip_not_provided``."""
    return (bool(os.environ.get("YIZHAN_STRICT_SKIPS")) and report.skipped and not hasattr(report, "wasxfail")
            and NOT_PROVIDED not in str(report.longrepr))
