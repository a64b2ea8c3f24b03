"""labutils.layers against its oracles: ``FastGRU`` against ``nn.GRU`` with the same weights, in
float64, and ``torch.autograd.gradcheck``; ``BF16FastGRU`` against ``FastGRU`` in float32 and against
products rounded by hand; ``CharRNN(layer=...)``; and ``pick_gru_layer``'s choice by measurement."""

import pytest
import torch
from torch import nn

from labutils import layers
from labutils.layers import BF16FastGRU, FastGRU, GRUChoice, GRULayerFunction, mm, pass_seconds, pick_gru_layer
from labutils.models import CharRNN

B, T, I, H = 3, 7, 4, 5


def make_pair(num_layers, dtype=torch.float64, seed=0):
    """An nn.GRU and a FastGRU holding the same weights (copied through the state dict)."""
    torch.manual_seed(seed)
    ref = nn.GRU(I, H, num_layers, batch_first=True).to(dtype)
    fast = FastGRU(I, H, num_layers).to(dtype)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def outputs_and_gradients(model, x, h0, R, S):
    """out, h_n and the gradients of (out * R).sum() + (h_n * S).sum() w.r.t. x, h0 and the weights."""
    out, h_n = model(x, h0)
    inputs = [x] + ([h0] if h0 is not None else []) + list(model.parameters())
    return [out, h_n, *torch.autograd.grad((out * R).sum() + (h_n * S).sum(), inputs)]


def test_parameters_are_nn_grus():
    ref, fast = nn.GRU(I, H, 3, batch_first=True), FastGRU(I, H, 3)
    assert [(k, v.shape) for k, v in fast.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    bound = 1 / H**0.5  # nn.GRU's initialisation U(-bound, bound)
    assert all(p.abs().max() <= bound and p.std() > bound / 4 for p in fast.parameters())


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_h0", [False, True])
def test_outputs_and_gradients_match_nn_gru_in_float64(num_layers, with_h0):
    ref, fast = make_pair(num_layers)
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


def test_layer_function_passes_gradcheck():
    torch.manual_seed(1)
    shapes = [(3, 2, 4), (2, 5), (15, 4), (15, 5), (15,), (15,)]  # time-major x, h0, W_ih, W_hh, b_ih, b_hh
    inputs = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(GRULayerFunction.apply, inputs)


def test_float32_is_close_to_nn_gru():
    ref, fast = make_pair(2, dtype=torch.float32, seed=3)
    x, h0 = torch.randn(B, T, I, requires_grad=True), torch.randn(2, B, H, requires_grad=True)
    R, S = torch.randn(B, T, H), torch.randn(2, B, H)
    for g, w in zip(outputs_and_gradients(fast, x, h0, R, S), outputs_and_gradients(ref, x, h0, R, S)):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_outputs_may_be_changed_in_place():
    """Changing out or h_n in place must not corrupt the gradients (they are copies, not saved buffers)."""
    _, fast = make_pair(1)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    out, h_n = fast(x)
    (out.mul_(2).sum() + h_n.add_(1).sum()).backward()
    x_again = x.detach().clone().requires_grad_()
    out, h_n = fast(x_again)
    (2 * out.sum() + h_n.sum()).backward()
    torch.testing.assert_close(x.grad, x_again.grad, atol=1e-12, rtol=0)


def test_dropout_acts_between_layers_in_training_only():
    torch.manual_seed(4)
    fast = FastGRU(I, H, 2, dropout=1.0).double()  # p = 1 zeroes all of layer 0's output
    one_layer = FastGRU(I, H, 1).double()
    for name in ("weight_hh", "bias_ih", "bias_hh"):  # on a zero input, W_ih plays no part
        getattr(one_layer, f"{name}_l0").data = getattr(fast, f"{name}_l1").data.clone()
    x = torch.randn(B, T, I, dtype=torch.float64)
    out_train, _ = fast.train()(x)
    torch.testing.assert_close(out_train, one_layer(torch.zeros_like(x))[0], atol=1e-12, rtol=0)
    assert (fast.eval()(x)[0] - out_train).abs().max() > 1e-3


def test_rejects_time_first_input_and_wrong_width():
    with pytest.raises(ValueError, match="batch-first"):
        FastGRU(I, H, batch_first=False)
    with pytest.raises(ValueError, match="expected x"):
        FastGRU(I, H)(torch.randn(B, T, I + 1))


def test_mm_rounds_to_the_dtype_of_its_second_factor():
    """float32 factors: exactly torch.addmm; a bfloat16 b: a rounded to bfloat16, the product rounded
    to bfloat16, add in float32."""
    torch.manual_seed(6)
    a, b, add = torch.randn(8, 32), torch.randn(32, 24), torch.randn(24)
    assert torch.equal(mm(a, b, add=add), torch.addmm(add, a, b))
    out = torch.empty(8, 24)
    assert mm(a, b.bfloat16(), add=add, out=out) is out and out.dtype == torch.float32
    by_hand = (a.bfloat16().double() @ b.bfloat16().double()).bfloat16().double()
    # The product's sums may round to a neighbouring bfloat16 number: 2^-8 apart, relatively.
    torch.testing.assert_close(out.double() - add.double(), by_hand, atol=1e-5, rtol=2**-7)
    assert (out - torch.addmm(add, a, b)).abs().max() > 1e-3  # rounded, not float32
    assert mm(a, b.bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("with_h0", [False, True])
def test_bf16_fast_gru_is_fast_gru_with_rounded_products(with_h0):
    """Outputs and every gradient within 2% of FastGRU's in float32, and not equal to them."""
    torch.manual_seed(7)
    fast = FastGRU(16, 64, 2)
    bf16 = BF16FastGRU(16, 64, 2)
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


def test_char_rnn_trained_with_fast_gru_loads_into_the_standard_model():
    """What the grader does: rebuild CharRNN from its config (nn.GRU) and load the weights."""
    torch.manual_seed(5)
    fast_model = CharRNN(11, 6, H, 2, "gru", layer=FastGRU).double()
    standard = CharRNN(**fast_model.config).double()
    assert isinstance(standard.rnn, nn.GRU) and not isinstance(fast_model.rnn, nn.GRU)
    standard.load_state_dict(fast_model.state_dict())
    x = torch.randint(0, 11, (B, T))
    (logits_fast, h_fast), (logits_std, h_std) = fast_model(x), standard(x)
    torch.testing.assert_close(logits_fast, logits_std, atol=1e-12, rtol=0)
    torch.testing.assert_close(h_fast, h_std, atol=1e-12, rtol=0)


def test_char_rnn_refuses_a_layer_with_other_parameters():
    with pytest.raises(ValueError, match="parameters of nn.LSTM"):
        CharRNN(11, 6, H, 2, "lstm", layer=FastGRU)  # a GRU's 3H rows where an LSTM has 4H
    with pytest.raises(ValueError, match="leave nonlinearity"):
        CharRNN(11, 6, H, 1, "rnn", "relu", layer=nn.RNN)


def test_rejects_an_initial_state_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"h0 of shape .* \(2, 3, 5\), got \(1, 3, 5\)"):
        FastGRU(I, H, 2)(torch.randn(B, T, I), torch.zeros(1, B, H))


def turn_timer(durations):
    """A fake clock for ``pass_seconds``: its k-th pass (layers in turn) takes ``durations[k]`` seconds.

    ``pass_seconds`` reads the timer twice per pass, before and after, so calls alternate between a
    start (0) and an end (the pass's duration).
    """
    calls = iter(range(2 * len(durations)))

    def timer():
        k = next(calls)
        return 0.0 if k % 2 == 0 else durations[k // 2]

    return timer


TINY = dict(input_size=4, hidden_size=8, num_layers=1, seq_len=3, batch_size=2)


@pytest.mark.parametrize(
    "durations, picked",
    [
        # passes in turn (FastGRU, BF16FastGRU) x 2 rounds; the best of each counts
        ([1.0, 0.8, 1.5, 1.2], BF16FastGRU),  # 0.8 <= 0.8 x 1.0: exactly at the rule
        ([1.0, 0.81, 1.5, 1.2], FastGRU),  # just over it
        ([1.0, 0.9, 3.0, 1.0], FastGRU),  # the last (or mean) pass would pick bfloat16; the best does not
        ([2.0, 1.0, 1.0, 1.6], FastGRU),  # each layer's best from another round: 1.0 vs 1.0
        ([0.5, 2.0, 1.0, 0.4], BF16FastGRU),  # 0.4 <= 0.8 x 0.5
    ],
)
def test_pick_gru_layer_takes_bfloat16_only_at_four_fifths_of_fast_grus_time(durations, picked):
    choice = pick_gru_layer("cpu", repeats=2, try_bf16=True, timer=turn_timer(durations), **TINY)
    assert isinstance(choice, GRUChoice) and choice.layer is picked
    fast, bf16 = min(durations[0::2]), min(durations[1::2])
    assert choice.seconds == {"FastGRU": fast, "BF16FastGRU": bf16}  # the times, for the caller to print
    layer, seconds = choice  # unpacks like a tuple
    assert layer is picked and seconds is choice.seconds


@pytest.mark.parametrize("device", ["cuda", "mps", torch.device("cuda", 0)])
def test_pick_gru_layer_gives_nn_gru_on_a_gpu_without_timing(device):
    def timer():
        raise AssertionError("a GPU's choice needs no timing")

    assert pick_gru_layer(device, timer=timer) == GRUChoice(nn.GRU, {})


def test_pick_gru_layer_times_for_real_and_leaves_the_random_state_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    choice = pick_gru_layer("cpu", repeats=1, try_bf16=True, **TINY)
    assert torch.equal(torch.rand(3), expected), "pick_gru_layer changed the global random state"
    assert choice.layer in (FastGRU, BF16FastGRU)
    assert set(choice.seconds) == {"FastGRU", "BF16FastGRU"} and all(s > 0 for s in choice.seconds.values())


@pytest.mark.parametrize("products_pay", [False, True])
def test_bf16_is_timed_only_where_its_products_are_faster(monkeypatch, products_pay):
    asked = []

    def pay(rows, inner, cols):
        asked.append((rows, inner, cols))
        return products_pay

    monkeypatch.setattr(layers, "bfloat16_products_pay", pay)
    choice = pick_gru_layer("cpu", repeats=2, timer=turn_timer([1.0, 0.5, 1.0, 0.5]), **TINY)
    assert asked == [(TINY["batch_size"], TINY["hidden_size"], 3 * TINY["hidden_size"])]  # the layer's product
    if products_pay:
        assert choice == GRUChoice(BF16FastGRU, {"FastGRU": 1.0, "BF16FastGRU": 0.5})
    else:  # FastGRU alone is timed, twice: its passes are the 1st and 2nd durations
        assert choice == GRUChoice(FastGRU, {"FastGRU": 0.5})
    never = pick_gru_layer("cpu", repeats=1, try_bf16=False, timer=turn_timer([1.0]), **TINY)
    assert never == GRUChoice(FastGRU, {"FastGRU": 1.0}) and len(asked) == 1


@pytest.mark.parametrize(
    "times, pays",
    [  # three float32 products, then three bfloat16 ones: the best of each is compared
        ([1.0, 1.0, 1.0, 2.0, 2.0, 0.9], True),
        ([1.0, 0.8, 1.0, 0.9, 0.9, 0.9], False),
        ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], False),  # no faster: not worth the precision
    ],
)
def test_bfloat16_products_pay_compares_the_best_product_of_each_dtype(monkeypatch, times, pays):
    durations = iter(times)
    monkeypatch.setattr(layers, "_seconds", lambda work: next(durations))
    assert layers.bfloat16_products_pay(4, 8, 12) is pays


def test_bfloat16_products_pay_runs_for_real():
    assert isinstance(layers.bfloat16_products_pay(4, 8, 12, repeats=1), bool)


def test_pass_seconds_runs_forward_and_backward_of_every_layer_in_turn():
    order = []

    class Logged(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name, self.w = name, nn.Parameter(torch.ones(1))

        def forward(self, x):
            order.append(self.name)
            return x * self.w, None

    layers = {"a": Logged("a"), "b": Logged("b")}
    seconds = pass_seconds(layers, torch.ones(2, 3, 1), repeats=3, timer=turn_timer([3.0, 1.0, 2.0, 5.0, 4.0, 6.0]))
    assert order == ["a", "b"] * 3
    assert seconds == {"a": 2.0, "b": 1.0}
    assert all(layer.w.grad.item() == 3 * 6 for layer in layers.values()), "the backward pass did not run"
