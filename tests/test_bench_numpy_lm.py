"""``python -m labutils bench numpy-lm --quick --json``: the figures exist and are finite numbers.

The speed target itself is measured by the benchmark, never asserted in a (timed) unit test.
The command runs through the command line's own ``main`` in this process: a new interpreter would
only add the import of torch (``tests/test_cli.py`` covers ``python -m labutils`` as a program).
"""

from __future__ import annotations

import json
import math

import pytest

from labutils.__main__ import main
from labutils.bench.numpy_lm import NOTEBOOK


@pytest.mark.slow
def test_quick_bench_prints_json(mirror, monkeypatch, capsys):
    if not NOTEBOOK.exists():
        pytest.skip("the benchmark needs solutions/02_bptt_numpy.ipynb")
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))
    assert main(["bench", "numpy-lm", "--quick", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("speedup", "ours_loss", "baseline_loss", "ours_chars_per_s", "baseline_chars_per_s"):
        assert isinstance(figures[key], float) and math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["hidden"] == 100 and figures["seq_len"] == 25
    # Both models learnt something: below the loss of a uniform guess over the characters (ln 75 = 4.3).
    assert figures["ours_loss"] < 4.3 and figures["baseline_loss"] < 4.3
