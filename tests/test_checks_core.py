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
