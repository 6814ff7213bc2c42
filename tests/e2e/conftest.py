import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zhili_stack import Stack  # noqa: E402


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp=str(tmp_path))
    yield s
    s.stop()
