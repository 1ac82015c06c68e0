"""The text tasks on a tiny random-init model: kept tokens stay exactly, files round-trip, bad
input is one clear line (and on the CLI exit status 1, no traceback, no output folder)."""
from __future__ import annotations

import os
import subprocess
import sys

import polydiff
import pytest
import torch
from polydiff_text import backend, io, tasks, vocab
from polydiff_text.model import Transformer

TINY = "text-tiny-test"


class TinyBackend:
    """A random 1-layer model in the real layout and vocabulary, registered for "text"."""

    @polydiff.hookimpl
    def register_backends(self, register):
        def load(device):
            torch.manual_seed(0)
            net = Transformer(vocab.size(), length=backend.LENGTH, dim=32, layers=1, heads=2).eval()
            return polydiff.LoadedModel(net=net, schedule=polydiff.components().schedules.get_named("mask-linear"),
                                        prediction="logits", mask_id=vocab.token_id(vocab.MASK))

        register(polydiff.Backend(TINY, "text", load, prediction="logits"))


@pytest.fixture(scope="module")
def tiny():
    with polydiff.register_plugin(TinyBackend(), "text-tiny"):
        yield


def _gen(**fields):
    fields = {"seed": 0, "steps": 3, **fields}
    return polydiff.generate("text", backend=TINY, **fields)


def test_infill_keeps_every_given_token_and_fills_each_mask_with_one_word(tiny):
    init = "the phone is [MASK] and the battery _ all day ."
    result = _gen(task="infill", init=init, n=3)
    given = vocab.split(init)
    for row in result.samples.tolist():
        assert row[len(given)] == vocab.token_id(vocab.SEP)
        for got, want in zip(row, given):
            assert got == vocab.token_id(want) if want != vocab.MASK else got != vocab.token_id(vocab.MASK)
    assert all(len(o["text"].split()) >= 9 for o in result.outputs)


def test_summarise_keeps_the_paragraph_and_sentiment_reads_the_label_slot(tiny):
    paragraph = "maria opened a bakery in paris on monday . many people came to see it ."
    ids = vocab.encode(paragraph)
    out = _gen(task="summarise", init=paragraph, n=2)
    assert (out.samples[:, :len(ids)] == torch.tensor(ids)).all()
    assert isinstance(out.outputs[0]["summary"], str)
    review = "the hotel is dirty and noisy ."
    s = _gen(task="sentiment", init=review, steps=1).outputs[0]
    assert s["label"] in ("positive", "negative", "neutral")
    assert abs(sum(s["probabilities"].values()) - 1) < 1e-4 and s["probability"] == max(s["probabilities"].values())
    row = s["tokens"]
    n = len(vocab.encode(review))
    assert row[:n] == vocab.encode(review) and row[n] == vocab.token_id(vocab.SEP)
    assert row[n + 2] == vocab.token_id(vocab.EOS) and set(row[n + 3:]) == {vocab.token_id(vocab.PAD)}


def test_temperature_zero_takes_the_most_probable_tokens(tiny):
    # one step reveals every token at once: at temperature 0 each is the argmax, whatever the seed
    a = _gen(prompt="a review", temperature=0.0, n=2, steps=1).samples
    b = _gen(prompt="a review", temperature=0.0, n=2, steps=1, seed=5).samples
    assert torch.equal(a, b) and torch.equal(a[0], a[1])
    c = _gen(prompt="a review", temperature=1.0, n=2, steps=1).samples
    assert not torch.equal(a, c)


def test_files_round_trip(tiny, tmp_path):
    result = _gen(prompt="a positive review of a film", n=2)
    files = result.save(tmp_path)
    names = sorted(p.name for p in files)
    assert names == ["generate-000.txt", "generate-001.txt", "generate.json", "metadata.json"]
    assert io.read(files) == result.outputs
    assert (tmp_path / "generate-000.txt").read_text() == result.outputs[0]["text"] + "\n"


@pytest.mark.parametrize("fields, message", [
    (dict(task="infill", init=""), "init: the text is empty"),
    (dict(task="infill", init="the phone is great ."), "init: no [MASK]"),
    (dict(task="infill", init="the phone is [MASK] and wibble ."), "init: not in the 372-token vocabulary: 'wibble'"),
    (dict(task="summarise", init="   "), "init: the text is empty"),
    (dict(task="sentiment", init="great " * 36), "init: 36 tokens, over the budget of 35"),
    (dict(task="sentiment", init="the phone is [SEP] great"), "init: the text may not contain [SEP]"),
    (dict(prompt="a review", sampler="unipc"), "sampler: 'unipc' drives the gaussian process"),
    (dict(prompt="a review", temperature=-1), "temperature"),
])
def test_bad_input_is_one_clear_line(tiny, fields, message):
    with pytest.raises(polydiff.InvalidInputError) as info:
        _gen(**fields)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_text_file_as_init(tiny, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("the film is [MASK] .\n")
    assert _gen(task="infill", init=str(path)).outputs[0]["text"].startswith("the film is")


def test_cli_bad_input_exits_1_without_traceback_or_output(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "polydiff", "generate", "text", "--task", "infill", "--init",
           "the phone is great .", "-o", str(out), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "no [MASK]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_layout_fits_every_corpus_record():
    from polydiff_text import data

    for r in data.batch(300, 3):
        seq = backend.record_sequence(r)
        assert len(seq) == backend.LENGTH and seq[-1] == vocab.token_id(vocab.PAD)
        text, tail = tasks.split_sequence(seq)
        assert vocab.decode(text, tidy=False) == r["text"]


def test_generate_defaults_are_the_evaluated_ones(tiny):
    """generate runs remask at temperature 0.5 without guidance unless told otherwise (the
    settings `polydiff eval text`'s temperature table chose); the request's values win."""
    run = _gen(prompt="a review").metadata["resolved"]
    assert (run["sampler"], run["guidance"], run["sampler_options"]) == ("remask", 1.0, {"temperature": 0.5})
    run = _gen(prompt="a review", sampler="mdlm", guidance=2.0, temperature=1.0).metadata["resolved"]
    assert (run["sampler"], run["guidance"], run["sampler_options"]) == ("mdlm", 2.0, {"temperature": 1.0})


def test_loading_the_shipped_model_does_not_import_dynamo():
    """The shipped checkpoint skips the meta-device build, which would import torch._dynamo
    (1.2 s of a CLI call) for meta-tensor arithmetic."""
    code = ("import sys; from polydiff_text import backend; backend.load('cpu'); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
