"""The judges of the self-checks: oracles, the slips they recognise, and the advice for each.

A ``Check`` (``labutils.checks.core``) names its judge as ``"labutils.checks.judges.labNN:name"``;
the judge is imported only when a result is judged.  Nothing outside this package imports it at
import time, so the grader can hide the package from the submissions it runs: a notebook can
then neither call a reference implementation nor read one.  Shared helpers live in ``oracle``.
"""
