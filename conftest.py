"""Root pytest set-up, seen by tests/ and by nbval over solutions/ alike."""

import os

# Notebooks executed by nbval inherit this environment: small sizes unless told otherwise.
os.environ.setdefault("LABUTILS_BUDGET", "ci")
# Headless matplotlib for unit tests (kernels use the inline backend of their own).
os.environ.setdefault("MPLBACKEND", "Agg")
# tqdm bars write to stderr, which nbval does not compare; keep them narrow in logs.
os.environ.setdefault("TQDM_NCOLS", "80")
