"""The command line: ``python -m labutils COMMAND``.  Thin: each command calls one module.

Conventions: ``--version`` prints the package's version; results go to stdout, errors to stderr;
an error a user can fix (a folder that is taken, a missing file, data that cannot be had) ends
the command with one message and exit status 1, not a traceback (``LABUTILS_TRACEBACK=1`` shows
the traceback too).
"""

from __future__ import annotations

import argparse
import os
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

    return run_bench(args.name, as_json=args.json, quick=args.quick, copies=args.copies)


def _release(args) -> int:
    from .release import release

    release(args.out)
    return 0


def _hosted(args) -> int:
    from .hosting import apply

    changed = apply(check=args.check)
    if args.check:
        if changed:
            stale = ", ".join(changed)
            print(f"out of date with pyproject.toml's address: {stale}", file=sys.stderr)
            print("run `python -m labutils hosted`, then `python -m labutils generate`", file=sys.stderr)
            return 1
        print("the setup cells and README's links match pyproject.toml's address.")
        return 0
    print("wrote " + (", ".join(changed) if changed else "nothing (already up to date)"))
    if any(name.startswith("solutions/") for name in changed):
        print("now run `python -m labutils generate` to carry the setup cell into notebooks/")
    return 0


def _drop_working_folder() -> None:
    """``python -m`` put the working folder first on sys.path: a module a submission left there
    must never shadow one the grader imports later.  Nor does the grader write Python's bytecode
    cache (``__pycache__``) next to the modules it imports: it writes nothing outside its output
    folder."""
    sys.dont_write_bytecode = True
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]


def _grade(args) -> int:
    _drop_working_folder()
    from .grading import grade_folder
    from .grading.shards import ShardError, parse_shard

    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ShardError as exc:
        print(exc, file=sys.stderr)
        return 2
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
        shard=shard,
    )


def _merge(args) -> int:
    _drop_working_folder()
    from .grading.shards import merge

    return merge(args.shards, out=args.out, submissions=args.submissions, solutions=args.solutions)


def _collect(args) -> int:
    from .grading.collect import collect, write_manifest
    from .grading.roster import RosterError, read_roster

    try:
        roster = read_roster(args.roster) if args.roster else None
        result = collect(args.download, args.into, roster)
    except (RosterError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    manifest = args.manifest or f"{str(args.into).rstrip('/')}.csv"
    write_manifest(manifest, result)
    print(
        f"copied {result.count('copied')} file(s) of {result.students} student(s) into {args.into}; "
        f"{result.count('superseded')} older upload(s) and {result.count('skipped')} other file(s) left out; "
        f"every file's fate is in {manifest}"
    )
    if result.unmatched:
        print(f"not in the roster ({len(result.unmatched)}): {', '.join(result.unmatched[:10])}", file=sys.stderr)
    return 0


def _export(args) -> int:
    from .grading.exports import export

    return export(
        args.out,
        roster=args.roster,
        canvas=args.canvas,
        gradescope=args.gradescope,
        columns=args.column,
        labs=args.lab,
        solutions=args.solutions,
    )


def _gradescope(args) -> int:
    from .grading.gradescope import build_bundle

    try:
        path = build_bundle(
            args.lab,
            args.out,
            solutions=args.solutions,
            timeout=args.timeout,
            memory_mb=args.memory,
            visibility=args.visibility,
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {path}: upload it as the assignment's autograder (Configure Autograder > Zip file upload)")
    return 0


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
    """The command line: one block of argparse declarations per command, in the order of ``--help``.

    Longer than a screen because it is a flat list of declarations with no logic; split into one
    function per command it would only scatter the options that ``--help`` shows together.
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="python -m labutils", description="The RNN lab course's helper tools.")
    parser.add_argument("--version", action="version", version=f"labutils {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _course_commands(sub)
    _grading_commands(sub)
    _class_commands(sub)
    return parser


def _course_commands(sub) -> None:
    """download, generate, doctor, bench, release, hosted, execute."""
    from .bench import BENCHMARKS

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
    p.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    p.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    p.add_argument("--quick", action="store_true", help="a shorter run, for smoke tests")
    p.add_argument("--copies", type=int, help="bench grading: notebooks of lab 01 (half as many of lab 07)")
    p.set_defaults(func=_bench)

    p = sub.add_parser("release", help="write the student release (no solutions) into OUT")
    p.add_argument("out", help="folder to create (new or empty)")
    p.set_defaults(func=_release)

    p = sub.add_parser(
        "hosted", help="put the hosted setup cell first in every solution, and README's Colab/Binder links"
    )
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 naming what is out of date")
    p.set_defaults(func=_hosted)

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


def _grading_commands(sub) -> None:
    """grade, merge (see docs/GRADING.md)."""
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
    p.add_argument("--shard", metavar="I/N", help="grade the I-th of N equal shares (1 <= I <= N); then `merge`")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run kernels without bubblewrap (only for submissions you trust: they can then read and write your files)",
    )
    p.set_defaults(func=_grade)

    p = sub.add_parser("merge", help="merge the output folders of `grade --shard` runs into one")
    p.add_argument("shards", nargs="+", help="the shards' output folders")
    p.add_argument("--out", required=True, help="where the merged results, grades.csv and feedback/ go")
    p.add_argument("--submissions", required=True, help="the folder of submissions the shards graded")
    p.add_argument("--solutions", help="folder of the solution notebooks (default: the course's solutions/)")
    p.set_defaults(func=_merge)


def _class_commands(sub) -> None:
    """collect, export, gradescope: what instructors already use (see docs/GRADING.md)."""
    p = sub.add_parser("collect", help="arrange a Canvas bulk download (folder or .zip) as one folder per student")
    p.add_argument("download", help="Canvas's submissions .zip, or the folder it unpacks to")
    p.add_argument("--into", required=True, help="a new folder: one folder per student is made in it")
    p.add_argument("--roster", help="roster CSV (a Canvas gradebook export works) naming each student's folder")
    p.add_argument("--manifest", help="where the list of every file and its fate goes (default: INTO.csv)")
    p.set_defaults(func=_collect)

    p = sub.add_parser("export", help="write grades for Canvas's gradebook import and/or in Gradescope's CSV layout")
    p.add_argument("out", help="the grading output folder (its results/ and manual/)")
    p.add_argument("--roster", required=True, help="roster CSV (a Canvas gradebook or Gradescope roster export works)")
    p.add_argument("--canvas", help="write the Canvas gradebook CSV here")
    p.add_argument("--gradescope", help="write the Gradescope-layout CSV here")
    p.add_argument(
        "--column", action="append", default=[], metavar="LAB=TITLE",
        help="the column of a lab (name or number), e.g. '01=Lab 1 (48213)' to update Canvas assignment 48213",
    )  # fmt: skip
    p.add_argument("--lab", action="append", default=[], help="export this lab only (name or number; repeatable)")
    p.add_argument("--solutions", help="folder of the solution notebooks (default: the course's solutions/)")
    p.set_defaults(func=_export)

    p = sub.add_parser("gradescope", help="write a Gradescope autograder zip for one lab")
    p.add_argument("lab", help="the lab: its number (01), name (01_rnn_forward_numpy) or solution notebook")
    p.add_argument("out", help="the zip to write")
    p.add_argument("--solutions", help="folder of the solution notebooks (default: the course's solutions/)")
    p.add_argument("--timeout", type=float, default=600, help="wall-clock seconds per submission (default 600)")
    p.add_argument("--memory", type=int, default=4096, help="memory limit per submission in MB (default 4096)")
    p.add_argument(
        "--visibility", default="visible", choices=("visible", "after_due_date", "after_published", "hidden"),
        help="when students see the tests' results (default visible)",
    )  # fmt: skip
    p.set_defaults(func=_gradescope)


def main(argv=None) -> int:
    from .data import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, OSError, ValueError, RuntimeError) as exc:
        if os.environ.get("LABUTILS_TRACEBACK"):
            raise
        print(f"python -m labutils {args.command}: error: {exc}", file=sys.stderr)
        print("(LABUTILS_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
