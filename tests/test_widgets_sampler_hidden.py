"""The sampler widget and the hidden-state viewer, without a browser."""

import re

import numpy as np
import pytest
import torch

from labutils.models import CharRNN
from labutils.text import CharVocab
from labutils.widgets.hidden import (
    HiddenViewer,
    colour,
    colour_passage_html,
    inside_quotes,
    position_in_line,
    rank_units,
    unit_activations,
)
from labutils.widgets.sampler import Sampler, SampleSettings, generate

TEXT = 'Holmes said "Watson, come here." <Then> he left.\nThe end.'


@pytest.fixture
def model_and_vocab():
    torch.manual_seed(0)
    vocab = CharVocab(TEXT)
    return CharRNN(len(vocab), 8, 12, 1, "gru"), vocab


# ------------------------------------------------------------------------------------ sampler
def test_generate_continues_the_prime_to_the_asked_length(model_and_vocab):
    model, vocab = model_and_vocab
    text, message = generate(model, vocab, SampleSettings(prime="Holmes", temperature=1.0, length=25))
    assert text.startswith("Holmes") and len(text) == 6 + 25
    assert set(text) <= set(vocab.chars)
    assert "25 characters at temperature 1" in message


def test_same_seed_same_text_and_temperature_zero_is_top_1(model_and_vocab):
    model, vocab = model_and_vocab
    a, _ = generate(model, vocab, SampleSettings(prime="The", temperature=1.5, length=40, seed=3))
    b, _ = generate(model, vocab, SampleSettings(prime="The", temperature=1.5, length=40, seed=3))
    assert a == b
    greedy, msg = generate(model, vocab, SampleSettings(prime="The", temperature=0, length=40, seed=1))
    greedy2, _ = generate(model, vocab, SampleSettings(prime="The", temperature=0, length=40, seed=2))
    top1, msg1 = generate(model, vocab, SampleSettings(prime="The", temperature=1.0, top_k=1, length=40, seed=5))
    assert greedy == greedy2 == top1
    assert "most likely character" in msg and "top-1" in msg1


@pytest.mark.parametrize(
    "settings, expected",
    [
        (SampleSettings(prime="Holmes!?"), "never seen: ['!', '?']"),
        (SampleSettings(prime=""), "prime text is empty"),
        (SampleSettings(temperature=-0.5), "temperature must be 0 or more"),
    ],
)
def test_generate_explains_bad_settings(model_and_vocab, settings, expected):
    model, vocab = model_and_vocab
    text, message = generate(model, vocab, settings)
    assert text == "" and expected in message


def test_generate_without_a_model_says_train_first():
    assert "train one first" in generate(None, None, SampleSettings())[1]


def test_sampler_widget_button_shows_the_sample(model_and_vocab):
    model, vocab = model_and_vocab
    app = Sampler(model, vocab)
    app.prime.value, app.length.value, app.top_k.value = "Wat", 30, 5
    app.button.click()
    assert "<h4>Sample</h4>" in app.output.value and "<b>Wat</b>" in app.output.value
    assert "top-5" in app.message.value
    before = app.output.value
    app.prime.value = "Wat%"
    app.button.click()
    assert "never seen" in app.message.value and app.output.value == before


# ------------------------------------------------------------------------------ hidden states
def test_unit_activations_are_the_last_layer_states(model_and_vocab):
    model, vocab = model_and_vocab
    acts = unit_activations(model, vocab, "Holmes")
    assert acts.shape == (6, 12) and acts.dtype == np.float64
    with torch.no_grad():
        out, _ = model.rnn(model.embed(torch.as_tensor(vocab.encode("Holmes")).unsqueeze(0)))
    np.testing.assert_allclose(acts, out[0].double().numpy())
    with pytest.raises(ValueError, match=r"never seen: \['#'\]"):
        unit_activations(model, vocab, "Holmes#")


@pytest.mark.parametrize("cell, nonlinearity", [("rnn", "relu"), ("lstm", "tanh")])
def test_unit_activations_for_other_cells(cell, nonlinearity):
    vocab = CharVocab(TEXT)
    model = CharRNN(len(vocab), 4, 6, 2, cell, nonlinearity)
    assert unit_activations(model, vocab, "The end.").shape == (8, 6)


def test_colour_runs_blue_white_red():
    assert colour(-2.0, 2.0) == "#0000ff"
    assert colour(0.0, 2.0) == "#ffffff"
    assert colour(2.0, 2.0) == "#ff0000"
    assert colour(5.0, 2.0) == "#ff0000"  # clipped
    assert colour(1.0, 0.0) == "#ffffff"  # a unit that never moves stays white


def test_colour_passage_html_one_span_per_character_escaped():
    passage = "a<b\nc"
    page = colour_passage_html(passage, [-1.0, 0.0, 0.5, 1.0, -0.25])
    spans = re.findall(r'<span style="background-color:(#[0-9a-f]{6})" title="([^"]+)">(.*?)</span>', page, flags=re.S)
    assert [s[0] for s in spans] == ["#0000ff", "#ffffff", "#ff8080", "#ff0000", "#bfbfff"]
    assert [s[2] for s in spans] == ["a", "&lt;", "b", "⏎\n", "c"]
    assert spans[2][1] == "+0.500"
    with pytest.raises(ValueError, match="one value per character"):
        colour_passage_html("abc", [1.0, 2.0])


def test_features_and_ranking():
    passage = 'ab "cd" e\nfg'
    np.testing.assert_array_equal(inside_quotes(passage), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(position_in_line(passage), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(12, 4)) * 0.1
    acts[:, 2] += inside_quotes(passage)  # unit 2 tracks the quotes
    acts[:, 1] *= 30  # unit 1 is merely loud
    assert rank_units(acts, inside_quotes(passage))[0] == 2
    assert rank_units(acts)[0] == 1


def test_hidden_viewer_follows_the_slider_and_the_sort(model_and_vocab):
    model, vocab = model_and_vocab
    viewer = HiddenViewer(model, vocab, TEXT)
    assert viewer.acts.shape == (len(TEXT), 12)
    first = viewer.view.value
    assert first.count("<span") == len(TEXT)
    viewer.rank.value = 5
    assert viewer.view.value != first
    assert f"unit {viewer.order[5]} " in viewer.label.value
    viewer.sort_by.value = "inside quotes"
    assert viewer.order[0] == rank_units(viewer.acts, inside_quotes(TEXT))[0]
    viewer.sort_by.value = "unit number"
    viewer.rank.value = 3
    assert viewer.label.value.startswith("unit 3 ")
    viewer.passage.value = "Holmes ~"
    assert "never seen" in viewer.label.value and viewer.view.value == ""
