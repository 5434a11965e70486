"""Test settings for musicrl: torch threads.

The tests train tiny models (tens of thousands of parameters) for which extra threads only
add synchronisation; on the shared two-core machine two torch threads measured about 4x
slower per step than one. ``MUSICRL_TEST_THREADS`` overrides the default of 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("MUSICRL_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(old)
