"""``python -m labutils bench numpy-lm --quick --json``: the figures exist and are finite numbers.

The speed target itself is measured by the benchmark, never asserted in a (timed) unit test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from labutils.bench.numpy_lm import NOTEBOOK


@pytest.mark.slow
def test_quick_bench_prints_json(mirror):
    if not NOTEBOOK.exists():
        pytest.skip("the benchmark needs solutions/02_bptt_numpy.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "labutils", "bench", "numpy-lm", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "LABUTILS_DATA_MIRROR": str(mirror)},
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("speedup", "ours_loss", "baseline_loss", "ours_chars_per_s", "baseline_chars_per_s"):
        assert isinstance(figures[key], float) and math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["hidden"] == 100 and figures["seq_len"] == 25
    # Both models learnt something: below the loss of a uniform guess over the characters (ln 75 = 4.3).
    assert figures["baseline_loss"] < 4.3
