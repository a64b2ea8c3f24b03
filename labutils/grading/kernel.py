"""Start an IPython kernel under resource limits (the kernel a submission runs in).

``python -m labutils.grading.kernel -f CONNECTION_FILE`` sets, before anything of the student's
runs:

* ``RLIMIT_DATA`` to ``LABUTILS_GRADE_MEMORY_MB`` megabytes: a large NumPy or PyTorch allocation
  fails with ``MemoryError`` instead of exhausting the machine.  (``RLIMIT_AS`` would also count
  the address space PyTorch reserves without using it; ``RLIMIT_DATA`` counts private writable
  memory, which is what a runaway allocation grows.)  The worker also watches the kernel's
  resident memory and kills it past the limit, for what the rlimit does not see;
* ``RLIMIT_FSIZE`` (no single file over ``LABUTILS_GRADE_FILE_MB``, default 1024) and
  ``RLIMIT_CORE`` 0 (a crash leaves no core dump).

Then it runs ``ipykernel`` as ``python -m ipykernel_launcher`` would.
"""

from __future__ import annotations

import os
import resource
import sys


def apply_limits() -> None:
    memory_mb = int(os.environ.pop("LABUTILS_GRADE_MEMORY_MB", "0") or 0)
    file_mb = int(os.environ.pop("LABUTILS_GRADE_FILE_MB", "1024") or 0)
    if memory_mb > 0 and hasattr(resource, "RLIMIT_DATA"):
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if file_mb > 0:
        limit = file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # as ipykernel_launcher does; IPython adds the working directory back later
    apply_limits()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=sys.argv[1:])


if __name__ == "__main__":
    main()
