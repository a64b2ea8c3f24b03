"""The command line: ``python -m labutils COMMAND``.  Thin: each command calls one module."""

from __future__ import annotations

import argparse
import sys


def _download(args) -> int:
    from .data import REGISTRY, DataError, fetch

    names = sorted(REGISTRY) if args.all or not args.names else args.names
    failed = 0
    for name in names:
        try:
            path = fetch(name, accept_changed=args.accept_changed or None)
            print(f"ok       {name:32s} {path}")
        except DataError as exc:
            failed += 1
            print(f"FAILED   {name}\n{exc}\n", file=sys.stderr)
    return 1 if failed else 0


def _generate(args) -> int:
    from .notebooks import generate

    changed = generate(check=args.check)
    if args.check:
        if changed:
            print(
                "notebooks/ is out of date with solutions/; run `python -m labutils generate`.\n"
                "Differs: " + ", ".join(changed),
                file=sys.stderr,
            )
            return 1
        print("notebooks/ is up to date with solutions/.")
        return 0
    print("wrote " + (", ".join(changed) if changed else "nothing (already up to date)"))
    return 0


def _doctor(args) -> int:
    from .doctor import run_doctor

    return run_doctor()


def _bench(args) -> int:
    from .bench import run_bench

    return run_bench(args.name, as_json=args.json, quick=args.quick)


def _release(args) -> int:
    from .release import release

    release(args.out)
    return 0


def _grade(args) -> int:
    import os

    from .grading import grade_folder

    # ``python -m`` put the working folder first on sys.path: a module a submission left there
    # must never shadow one the grader imports later.
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    return grade_folder(
        args.submissions,
        out=args.out,
        timeout=args.timeout,
        memory_mb=args.memory,
        jobs=args.jobs,
        solutions=args.solutions,
        seed=args.seed,
        unsafe_no_sandbox=args.unsafe_no_sandbox,
        resume=args.resume,
        student=args.student,
    )


def _execute(args) -> int:
    from .execute import execute_paths

    return execute_paths(
        args.paths,
        budget=args.budget,
        timeout=args.timeout,
        kernel_name=args.kernel,
        compare=args.compare,
        keep_going=args.keep_going,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labutils", description="The RNN lab course's helper tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="download (or copy from LABUTILS_DATA_MIRROR) and verify course texts")
    p.add_argument("names", nargs="*", help="texts to fetch (default: all)")
    p.add_argument("--all", action="store_true", help="fetch every registered text")
    p.add_argument(
        "--accept-changed", action="store_true", help="accept an upstream file whose sha256 differs from the registry's"
    )
    p.set_defaults(func=_download)

    p = sub.add_parser("generate", help="write notebooks/ (student versions) from solutions/")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 naming notebooks that are out of date")
    p.set_defaults(func=_generate)

    p = sub.add_parser("doctor", help="check versions, device, data and the widgets extension")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("bench", help="run a benchmark and print its figures")
    p.add_argument("name", help="benchmark name: numpy-lm or trainer")
    p.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    p.add_argument("--quick", action="store_true", help="a shorter run, for smoke tests")
    p.set_defaults(func=_bench)

    p = sub.add_parser("release", help="write the student release (no solutions) into OUT")
    p.add_argument("out", help="folder to create")
    p.set_defaults(func=_release)

    p = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    p.add_argument("submissions", help="a folder of notebooks, or of one folder per student")
    p.add_argument("--out", required=True, help="where grades.csv and feedback/ go")
    p.add_argument("--timeout", type=float, default=600, help="wall-clock seconds per submission (default 600)")
    p.add_argument("--memory", type=int, default=4096, help="memory limit per submission in MB (default 4096)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    p.add_argument("--solutions", help="folder of the solution notebooks (default: the course's solutions/)")
    p.add_argument("--seed", type=int, help="the run's seed (default: a secret one, logged in DIR): reproduces inputs")
    p.add_argument("--student", help="regrade this student only and merge into DIR (with --seed: reproduce a score)")
    p.add_argument("--resume", action="store_true", help="skip submissions already graded in DIR and unchanged")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run kernels without bubblewrap (only for submissions you trust: they can then read and write your files)",
    )
    p.set_defaults(func=_grade)

    p = sub.add_parser(
        "execute", help="run solution notebooks in a budget and store their outputs (scrubbed, run time in metadata)"
    )
    p.add_argument("paths", nargs="+", help="notebooks to run, one after another")
    p.add_argument("--budget", choices=("full", "ci"), default="full", help="LABUTILS_BUDGET of the run (default full)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds a cell may take (default 3600)")
    p.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's, python3)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="write nothing; exit 1 if a # NBVAL_CHECK_OUTPUT cell prints differently from its stored output",
    )
    p.add_argument("--keep-going", action="store_true", help="after a notebook fails, run the next ones anyway")
    p.set_defaults(func=_execute)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
