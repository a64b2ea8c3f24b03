"""Lab 07's given ``FastGRU`` (the cells tagged ``fast-gru``) against its oracles: ``nn.GRU`` with the
same weights, in float64, and ``torch.autograd.gradcheck``; ``BF16FastGRU`` against ``FastGRU`` in
float32 and against products rounded by hand; and ``CharRNN(layer=...)``."""

from pathlib import Path

import pytest
import torch
from torch import nn

import labutils as lu
from labutils.models import CharRNN
from labutils.notebooks import run_tagged_cells

NOTEBOOK = Path(__file__).resolve().parents[1] / "solutions" / "07_sherlock_assignment.ipynb"
B, T, I, H = 3, 7, 4, 5


@pytest.fixture(scope="module")
def cells():
    names = ("FastGRU", "BF16FastGRU", "GRULayerFunction", "GRU_LAYER", "mm")
    return run_tagged_cells(NOTEBOOK, "fast-gru", names, {"lu": lu})


def make_pair(cells, num_layers, dtype=torch.float64, seed=0):
    """An nn.GRU and a FastGRU holding the same weights (copied through the state dict)."""
    torch.manual_seed(seed)
    ref = nn.GRU(I, H, num_layers, batch_first=True).to(dtype)
    fast = cells["FastGRU"](I, H, num_layers).to(dtype)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def outputs_and_gradients(model, x, h0, R, S):
    """out, h_n and the gradients of (out * R).sum() + (h_n * S).sum() w.r.t. x, h0 and the weights."""
    out, h_n = model(x, h0)
    inputs = [x] + ([h0] if h0 is not None else []) + list(model.parameters())
    return [out, h_n, *torch.autograd.grad((out * R).sum() + (h_n * S).sum(), inputs)]


def test_parameters_are_nn_grus(cells):
    ref, fast = nn.GRU(I, H, 3, batch_first=True), cells["FastGRU"](I, H, 3)
    assert [(k, v.shape) for k, v in fast.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    bound = 1 / H**0.5  # nn.GRU's initialisation U(-bound, bound)
    assert all(p.abs().max() <= bound and p.std() > bound / 4 for p in fast.parameters())


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_h0", [False, True])
def test_outputs_and_gradients_match_nn_gru_in_float64(cells, num_layers, with_h0):
    ref, fast = make_pair(cells, num_layers)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(num_layers, B, H, dtype=torch.float64, requires_grad=True) if with_h0 else None
    R, S = torch.randn(B, T, H, dtype=torch.float64), torch.randn(num_layers, B, H, dtype=torch.float64)
    got, want = outputs_and_gradients(fast, x, h0, R, S), outputs_and_gradients(ref, x, h0, R, S)
    assert got[0].shape == (B, T, H) and got[1].shape == (num_layers, B, H)
    names = ["out", "h_n", "x"] + (["h0"] if with_h0 else []) + [n for n, _ in fast.named_parameters()]
    assert len(got) == len(want) == len(names)
    for name, g, w in zip(names, got, want):
        err = (g - w).abs().max().item()
        assert err <= 1e-10 * max(w.abs().max().item(), 1e-30), f"{name}: max error {err:.1e}"


def test_layer_function_passes_gradcheck(cells):
    torch.manual_seed(1)
    shapes = [(3, 2, 4), (2, 5), (15, 4), (15, 5), (15,), (15,)]  # time-major x, h0, W_ih, W_hh, b_ih, b_hh
    inputs = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(cells["GRULayerFunction"].apply, inputs)


def test_float32_is_close_to_nn_gru(cells):
    ref, fast = make_pair(cells, 2, dtype=torch.float32, seed=3)
    x, h0 = torch.randn(B, T, I, requires_grad=True), torch.randn(2, B, H, requires_grad=True)
    R, S = torch.randn(B, T, H), torch.randn(2, B, H)
    for g, w in zip(outputs_and_gradients(fast, x, h0, R, S), outputs_and_gradients(ref, x, h0, R, S)):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_outputs_may_be_changed_in_place(cells):
    """Changing out or h_n in place must not corrupt the gradients (they are copies, not saved buffers)."""
    _, fast = make_pair(cells, 1)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    out, h_n = fast(x)
    (out.mul_(2).sum() + h_n.add_(1).sum()).backward()
    x_again = x.detach().clone().requires_grad_()
    out, h_n = fast(x_again)
    (2 * out.sum() + h_n.sum()).backward()
    torch.testing.assert_close(x.grad, x_again.grad, atol=1e-12, rtol=0)


def test_dropout_acts_between_layers_in_training_only(cells):
    torch.manual_seed(4)
    fast = cells["FastGRU"](I, H, 2, dropout=1.0).double()  # p = 1 zeroes all of layer 0's output
    one_layer = cells["FastGRU"](I, H, 1).double()
    for name in ("weight_hh", "bias_ih", "bias_hh"):  # on a zero input, W_ih plays no part
        getattr(one_layer, f"{name}_l0").data = getattr(fast, f"{name}_l1").data.clone()
    x = torch.randn(B, T, I, dtype=torch.float64)
    out_train, _ = fast.train()(x)
    torch.testing.assert_close(out_train, one_layer(torch.zeros_like(x))[0], atol=1e-12, rtol=0)
    assert (fast.eval()(x)[0] - out_train).abs().max() > 1e-3


def test_rejects_time_first_input_and_wrong_width(cells):
    with pytest.raises(ValueError, match="batch-first"):
        cells["FastGRU"](I, H, batch_first=False)
    with pytest.raises(ValueError, match="expected x"):
        cells["FastGRU"](I, H)(torch.randn(B, T, I + 1))


def test_gru_layer_is_fast_gru_on_cpu_only(cells):
    assert cells["GRU_LAYER"] is (cells["FastGRU"] if lu.device().type == "cpu" else nn.GRU)


def test_mm_rounds_to_the_dtype_of_its_second_factor(cells):
    """float32 factors: exactly torch.addmm; a bfloat16 b: a rounded to bfloat16, the product rounded
    to bfloat16, add in float32."""
    torch.manual_seed(6)
    a, b, add = torch.randn(8, 32), torch.randn(32, 24), torch.randn(24)
    mm = cells["mm"]
    assert torch.equal(mm(a, b, add=add), torch.addmm(add, a, b))
    out = torch.empty(8, 24)
    assert mm(a, b.bfloat16(), add=add, out=out) is out and out.dtype == torch.float32
    by_hand = (a.bfloat16().double() @ b.bfloat16().double()).bfloat16().double()
    # The product's sums may round to a neighbouring bfloat16 number: 2^-8 apart, relatively.
    torch.testing.assert_close(out.double() - add.double(), by_hand, atol=1e-5, rtol=2**-7)
    assert (out - torch.addmm(add, a, b)).abs().max() > 1e-3  # rounded, not float32
    assert mm(a, b.bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("with_h0", [False, True])
def test_bf16_fast_gru_is_fast_gru_with_rounded_products(cells, with_h0):
    """Outputs and every gradient within 2% of FastGRU's in float32, and not equal to them."""
    torch.manual_seed(7)
    fast = cells["FastGRU"](16, 64, 2)
    bf16 = cells["BF16FastGRU"](16, 64, 2)
    bf16.load_state_dict(fast.state_dict())
    assert bf16.matmul_dtype is torch.bfloat16 and fast.matmul_dtype is None
    x = torch.randn(4, 30, 16, requires_grad=True)
    h0 = torch.randn(2, 4, 64, requires_grad=True) if with_h0 else None
    R, S = torch.randn(4, 30, 64), torch.randn(2, 4, 64)
    got, want = outputs_and_gradients(bf16, x, h0, R, S), outputs_and_gradients(fast, x, h0, R, S)
    names = ["out", "h_n", "x"] + (["h0"] if with_h0 else []) + [n for n, _ in fast.named_parameters()]
    for name, g, w in zip(names, got, want, strict=True):
        assert g.dtype == torch.float32, f"{name} is {g.dtype}"
        error = ((g - w).norm() / w.norm()).item()
        assert 1e-5 < error < 2e-2, f"{name}: relative error {error:.1e}"


def test_char_rnn_trained_with_fast_gru_loads_into_the_standard_model(cells):
    """What the grader does: rebuild CharRNN from its config (nn.GRU) and load the weights."""
    torch.manual_seed(5)
    fast_model = CharRNN(11, 6, H, 2, "gru", layer=cells["FastGRU"]).double()
    standard = CharRNN(**fast_model.config).double()
    assert isinstance(standard.rnn, nn.GRU) and not isinstance(fast_model.rnn, nn.GRU)
    standard.load_state_dict(fast_model.state_dict())
    x = torch.randint(0, 11, (B, T))
    (logits_fast, h_fast), (logits_std, h_std) = fast_model(x), standard(x)
    torch.testing.assert_close(logits_fast, logits_std, atol=1e-12, rtol=0)
    torch.testing.assert_close(h_fast, h_std, atol=1e-12, rtol=0)


def test_char_rnn_refuses_a_layer_with_other_parameters(cells):
    with pytest.raises(ValueError, match="parameters of nn.LSTM"):
        CharRNN(11, 6, H, 2, "lstm", layer=cells["FastGRU"])  # a GRU's 3H rows where an LSTM has 4H
    with pytest.raises(ValueError, match="leave nonlinearity"):
        CharRNN(11, 6, H, 1, "rnn", "relu", layer=nn.RNN)


def test_run_tagged_cells_names_what_is_missing(tmp_path):
    import nbformat

    path = tmp_path / "lab.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["mine"]})])
    nbformat.write(nb, path)
    assert run_tagged_cells(path, "mine", ("x",))["x"] == 1
    with pytest.raises(LookupError, match="tagged 'other'"):
        run_tagged_cells(path, "other", ("x",))
    with pytest.raises(LookupError, match="define no y"):
        run_tagged_cells(path, "mine", ("x", "y"))
