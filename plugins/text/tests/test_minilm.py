"""The MiniLM encoder runs the real pretrained weights and matches sentence-transformers."""
import polydiff
import pytest
import torch

PROMPTS = ["a red circle", "a small blue square on the left", "an orange triangle at the top", ""]


@pytest.fixture(scope="module")
def encoder():
    return polydiff.components().encoders["minilm"].load("cpu")


def test_registered_as_a_condition_encoder():
    spec = polydiff.components().encoders["minilm"]
    assert spec.kind == "condition" and polydiff.components().encoders.origin["minilm"] == "text"


def test_embeddings_are_unit_vectors_and_cached(encoder, monkeypatch):
    e = encoder(PROMPTS)
    assert e.shape == (4, 384) and torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    calls = []
    monkeypatch.setattr(encoder, "_encode", lambda ps: calls.append(ps) or torch.zeros(len(ps), 384))
    again = encoder(PROMPTS[:2] + ["a new prompt"])
    assert calls == [["a new prompt"]] and torch.equal(again[:2], e[:2])


def test_matches_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    from polydiff_text.minilm import model_dir

    reference = st.SentenceTransformer(str(model_dir()), device="cpu")
    expected = reference.encode(PROMPTS[:3], convert_to_tensor=True)
    assert torch.allclose(encoder(PROMPTS[:3]), expected, atol=1e-5)


def test_paraphrases_stay_closer_than_other_prompts(encoder):
    a, para, other = encoder(["a red circle", "a circle that is red", "a blue square"])
    assert a @ para > a @ other


def test_encode_gives_each_word_its_own_vector(encoder):
    out = encoder.encode(["a red circle on the left", "C#4 note"], max_tokens=8, pattern=r"[a-z]+#?\d?")
    assert set(out) == {"sentence", "tokens", "mask"} and out["tokens"].shape == (2, 8, 384)
    assert torch.equal(out["sentence"], out["tokens"][:, 0])
    assert out["mask"].tolist() == [[1.0] * 7 + [0.0], [1.0] * 3 + [0.0] * 5]
    assert torch.allclose(out["tokens"][0, 0], encoder(["a red circle on the left"])[0])
    assert torch.allclose(out["tokens"][0, 6], encoder(["left"])[0])
    assert torch.allclose(out["tokens"][1, 1], encoder(["c#4"])[0])   # one word, lower-cased
    assert out["tokens"][0, 7].abs().sum() == 0
    # alone, "left" and "right" are told apart far better than inside their sentences
    left, right = encoder.encode(["on the left", "on the right"])["tokens"][:, 3]
    s_left, s_right = encoder(["a red circle on the left", "a red circle on the right"])
    assert left @ right < s_left @ s_right - 0.3
