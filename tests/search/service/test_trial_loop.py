"""The worker loop without the CNN: importable without torch (hundreds of lightweight
workers must fit in memory), and run end to end by a real ``cnnsearch worker``
(test_worker.py) and the scale benchmark (tests/benchmarks/scale)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_loop_and_its_storage_stack_never_import_torch() -> None:
    code = ("import sys\n"
            "import search.service.trial_loop, search.service.proxy_client\n"
            "import benchmarks.scale.light_worker\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"

