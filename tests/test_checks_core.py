"""labutils.checks.core: the generic helpers raise with advice; the Check protocol round-trips."""

import numpy as np
import pytest

from labutils.checks import core


def test_assert_shape_names_expected_and_actual():
    with pytest.raises(AssertionError, match=r"h_next has shape \(5, 231\), expected \(231, 5\).*transpose"):
        core.assert_shape("h_next", np.zeros((5, 231)), (231, 5))
    core.assert_shape("h", np.zeros((5, 3)), (None, 3))


def test_rel_error_and_assert_close():
    assert core.rel_error([1.0, 2.0], [1.0, 2.0]) == 0
    assert core.rel_error([1.0], [1.1]) == pytest.approx(0.1 / 2.1)
    with pytest.raises(AssertionError, match="relative error"):
        core.assert_close("y", np.ones(3), np.ones(3) * 1.01, tol=1e-5)
    with pytest.raises(AssertionError, match="NaN"):
        core.assert_close("y", np.array([np.nan]), np.array([1.0]))


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = core.numerical_gradient(lambda: float(np.sum(x**3)), x)
    assert core.rel_error(grad, 3 * x**2) < 1e-8
    with pytest.raises(TypeError, match="float64"):
        core.numerical_gradient(lambda: 0.0, x.astype(np.float32))


def test_assert_gradient_diagnoses_transpose_and_sign():
    g = np.arange(1.0, 10.0).reshape(3, 3)
    core.assert_gradient("dW", g, g)
    with pytest.raises(AssertionError, match="transpose"):
        core.assert_gradient("dW", g.T, g)
    with pytest.raises(AssertionError, match="sign"):
        core.assert_gradient("dW", -g, g)
    with pytest.raises(AssertionError, match="transposed"):
        core.assert_gradient("dW", np.ones((2, 3)), np.ones((3, 2)))


def _judge_double(inputs, outputs):
    core.assert_close("double(x)", outputs["y"], 2 * inputs["x"], hint="Multiply by two.")


double_check = core.Check(
    grade_id="test-double",
    title="double",
    needs=("double",),
    make_inputs=lambda rng: {"x": rng.normal(size=4)},
    probe=lambda objs, inp: {"y": objs["double"](inp["x"])},
    judge=_judge_double,
)


def test_check_passes_on_right_answer_and_explains_wrong_one(capsys):
    double_check(lambda x: 2 * x)
    assert "double" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Multiply by two"):
        double_check(lambda x: x + x + 1)


def test_check_is_registered_and_outputs_are_plain_arrays():
    from labutils.checks import get_check

    assert get_check("test-double") is double_check
    inputs = double_check.inputs(seed=3)
    np.testing.assert_array_equal(inputs["x"], double_check.inputs(seed=3)["x"])
    outputs = double_check.run_probe({"double": lambda x: 2 * x}, inputs)
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in outputs.values())
    with pytest.raises(TypeError, match="not numbers or text"):
        double_check.run_probe({"double": lambda x: object()}, inputs)
    with pytest.raises(NameError, match="double"):
        double_check.run_probe({}, inputs)


def test_a_judge_named_by_its_module_is_imported_only_when_a_result_is_judged(monkeypatch):
    import types

    from labutils.checks.core import REGISTRY, Check

    calls = []
    module = types.ModuleType("judges_for_this_test")

    def judge(inputs, outputs):
        calls.append(float(outputs["y"]))
        if outputs["y"] != 2 * inputs["x"]:
            raise AssertionError("y should be twice x")

    module.judge = judge
    monkeypatch.setitem(__import__("sys").modules, "judges_for_this_test", module)
    check = Check(
        grade_id="test-lazy-judge",
        title="doubling",
        needs=("double",),
        make_inputs=lambda rng: {"x": 3.0},
        probe=lambda objs, inp: {"y": objs["double"](float(inp["x"]))},
        judge="judges_for_this_test:judge",
    )
    try:
        check(lambda x: 2 * x)
        assert calls == [6.0]
        with pytest.raises(AssertionError, match="twice"):
            check(lambda x: x + 1)
        monkeypatch.delitem(__import__("sys").modules, "judges_for_this_test")
        hidden = Check(**{**vars(check), "grade_id": "test-lazy-judge-hidden", "judge": "no_such_module_here:judge"})
        with pytest.raises(RuntimeError, match="cannot be imported here"):
            hidden(lambda x: 2 * x)
    finally:
        REGISTRY.pop("test-lazy-judge", None)
        REGISTRY.pop("test-lazy-judge-hidden", None)


# ------------------------------------------------------------------ errors become advice
def _matmul_slip(x):
    W = np.ones((5, 6))  # (H, D)
    return x @ W  # x is (B, D): needs W.T


matmul_check = core.Check(
    grade_id="test-matmul",
    title="product",
    needs=("f",),
    make_inputs=lambda rng: {"x": rng.normal(size=(3, 6))},
    probe=lambda objs, inp: {"y": objs["f"](inp["x"])},
    judge=lambda inp, out: None,
    hints={"matmul": "W is (H, D): multiply by W.T."},
)


def test_an_error_in_the_students_code_becomes_advice_chained_to_it():
    with pytest.raises(core.StudentCodeError) as info:
        matmul_check(_matmul_slip)
    err = info.value
    text = str(err)
    assert text.startswith("_matmul_slip raised ValueError: matmul")
    assert "W is (H, D): multiply by W.T." in text  # the check's hint for this kind of error
    assert "x (3, 6)" in text and "W (5, 6)" in text  # the shapes where it was raised
    assert isinstance(err.__cause__, ValueError)
    # The traceback runs through the student's line, for %debug and for the grader's "where".
    frames = [f.name for f in __import__("traceback").extract_tb(err.__traceback__)]
    assert "_matmul_slip" in frames


def test_advice_renders_alone_with_the_students_frames_only():
    with pytest.raises(core.StudentCodeError) as info:
        matmul_check(_matmul_slip)
    rendered = "\n".join(info.value._render_traceback_())
    assert rendered.splitlines()[0].endswith("✘ product\x1b[0m")
    assert "W is (H, D): multiply by W.T." in rendered
    assert "return x @ W" in rendered and "test_checks_core.py" in rendered  # the student's frame
    assert "labutils" not in rendered and "run_probe" not in rendered  # none of the checks' frames


def test_a_wrong_result_renders_as_its_advice_alone():
    with pytest.raises(core.CheckFailed) as info:
        double_check(lambda x: x + x + 1)
    assert info.value._render_traceback_() == ["\x1b[31m\x1b[1m✘ double\x1b[0m", str(info.value)]
    assert "Multiply by two" in str(info.value)


def test_a_stub_is_not_attempted_yet_and_stays_a_NotImplementedError():
    def stub(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="stub is not attempted yet") as info:
        double_check(stub)
    assert type(info.value) is NotImplementedError  # the grader reports "not done" by this name
    lines = info.value._render_traceback_()
    assert len(lines) == 2 and "not attempted yet" in lines[1]


def test_a_probes_own_complaint_is_not_blamed_on_the_students_code():
    check = core.Check(
        grade_id="test-pair",
        title="pair",
        needs=("f",),
        probe=lambda objs, inp: dict(zip("ab", core.unpack(objs["f"](), 2, "f must return (a, b)"))),
        judge=lambda inp, out: None,
    )
    with pytest.raises(core.CheckFailed, match=r"f must return \(a, b\); it returned a tuple of 3"):
        check(lambda: (1, 2, 3))


@pytest.mark.parametrize(
    "make_error, kind",
    [
        (lambda: np.ones((3, 4)) @ np.ones((5, 4)), "matmul"),
        (lambda: __import__("torch").ones(3, 4) @ __import__("torch").ones(5, 4), "matmul"),
        (lambda: __import__("torch").ones(3, 4) @ __import__("torch").ones(4, 5).double(), "dtype"),
        (lambda: np.ones((4, 7)) - np.ones(4), "broadcast"),
        (lambda: __import__("torch").ones(3, 15) * __import__("torch").ones(3, 5), "broadcast"),
        (lambda: np.ones((2, 3))[:, 3], "index"),
        (lambda: {"a": 1}["b"], "key"),
        (lambda: 1 / 0, "other"),
    ],
)
def test_error_kinds(make_error, kind):
    from labutils.checks.feedback import error_kind

    with pytest.raises(Exception) as info:  # noqa: B017 -- any error the student's code may raise
        make_error()
    assert error_kind(info.value) == kind


def test_unpacking_is_its_own_kind():
    from labutils.checks.feedback import error_kind

    with pytest.raises(ValueError) as info:
        a, b, c, d = __import__("torch").ones(3, 8).chunk(4)  # 3 rows: chunk(4) along dim 0 gives 3
    assert error_kind(info.value) == "unpack"


def test_the_advice_shows_in_a_real_ipython_shell(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.update(matmul_check=matmul_check, _matmul_slip=_matmul_slip, double_check=double_check)
    shell.run_cell("matmul_check(_matmul_slip)")
    shell.run_cell("double_check(lambda x: 3 * x)")
    out = capsys.readouterr().out
    assert "✘ product" in out and "multiply by W.T" in out and "return x @ W" in out
    assert "✘ double" in out and "Multiply by two" in out
    assert "labutils" not in out and "Traceback" not in out


# ------------------------------------------------------------ describing a wrong result
@pytest.mark.parametrize(
    "got, message",
    [
        (lambda w: 0 * w, "all zeros"),
        (lambda w: -w, "wrong sign"),
        (lambda w: 3 * w, "times 3"),
        (lambda w: w.T, "transpose"),
        (lambda w: w + 0.5, "same amount, 0.5"),
    ],
)
def test_describe_mismatch_names_what_is_wrong(got, message):
    from labutils.checks.judges.oracle import describe_mismatch

    want = np.random.default_rng(0).normal(size=(4, 4))
    assert message in describe_mismatch(got(want), want)


def test_describe_mismatch_says_from_which_step_on():
    from labutils.checks.judges.oracle import describe_mismatch

    want = np.random.default_rng(0).normal(size=(2, 5, 3))
    got = want.copy()
    got[:, 3:] += np.random.default_rng(1).normal(size=(2, 2, 3))
    assert "wrong from step 3 on" in describe_mismatch(got, want, time_axis=1)
    got = want.copy()
    got[:, 1] *= -2
    assert "at step 1 only" in describe_mismatch(got, want, time_axis=1)
    assert "every entry" in describe_mismatch(want + np.random.default_rng(2).normal(size=want.shape), want)


# ------------------------------------------------------------------- the grader's probe
def test_the_graders_probe_records_the_advice_and_the_students_line(tmp_path):
    import json

    from labutils.grading import probe

    inputs = tmp_path / "in.npz"
    np.savez(inputs, **matmul_check.inputs(0))
    probe.run("test-matmul", __name__, str(inputs), str(tmp_path / "out"), {"f": _matmul_slip})
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["type"] == "StudentCodeError"
    assert "W is (H, D): multiply by W.T." in report["message"]
    assert "return x @ W" in report["where"]

    def stub(x):
        raise NotImplementedError()

    probe.run("test-matmul", __name__, str(inputs), str(tmp_path / "stub"), {"f": stub})
    assert json.loads((tmp_path / "stub.json").read_text())["type"] == "NotImplementedError"


@pytest.mark.slow
def test_a_failed_check_in_a_real_kernel_shows_the_advice_alone():
    """nbclient runs two cells in a Jupyter kernel; the error output is what JupyterLab would show."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import numpy as np\nfrom labutils.checks import lab01",
        "def softmax(z):\n    e = np.exp(z - z.max(axis=-1))\n    return e / e.sum(axis=-1)\n\n"
        "lab01.check_softmax(softmax)",
        "def softmax(z):\n    e = np.exp(z - z.max(axis=-1, keepdims=True))\n    return e / e.sum()\n\n"
        "lab01.check_softmax(softmax)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    crash, wrong = ([o for o in nb.cells[i].outputs if o.output_type == "error"] for i in (1, 2))
    shown = "\n".join(crash[0].traceback)
    assert crash[0].ename == "StudentCodeError" and "✘ stable softmax" in shown
    assert "keepdims=True" in shown and "e = np.exp(z - z.max(axis=-1))" in shown  # advice, then the student's line
    assert "labutils/checks" not in shown and "judge" not in shown
    assert wrong[0].ename == "CheckFailed" and len(wrong[0].traceback) == 2
    assert "sums to 1 over the whole array" in wrong[0].traceback[1]


def test_an_error_in_a_function_the_students_code_calls_points_there():
    def helper(x):
        return x @ np.ones((5, 6))

    def caller(x):
        return helper(x) + 1

    with pytest.raises(core.StudentCodeError) as info:
        matmul_check(caller)
    text = str(info.value)
    assert text.startswith("caller raised ValueError in helper, which it calls: matmul")
    assert "Fix helper first (does its own check pass?)" in text
    assert "W is (H, D): multiply by W.T." not in text  # the check's hint is about caller, not helper
