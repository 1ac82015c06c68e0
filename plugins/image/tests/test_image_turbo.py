"""shapes-turbo, the 4-step student of shapes-unet: it samples ddim over its 4 trained steps
without guidance, a seed fixes a sample in any batch, its samples follow the prompt, editing by
replacement works, and what it was not trained for is refused in one line (CLI: exit 1)."""
import numpy as np
import polydiff
import pytest
import torch
from click.testing import CliRunner
from polydiff.cli import cli
from polydiff_image import data
from polydiff_image.checker import read_attributes

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")
TURBO = "shapes-turbo"


def test_four_unguided_ddim_steps_and_a_seed_fixes_a_sample():
    result = polydiff.generate("image", "a red circle", backend=TURBO, n=3, seed=7)
    resolved = result.metadata["resolved"]
    assert (resolved["sampler"], resolved["steps"], resolved["spacing"], resolved["guidance"]) == ("ddim", 4, "trained", 1.0)
    alone = polydiff.generate("image", "a red circle", backend=TURBO, n=1, seed=9)
    assert torch.allclose(alone.outputs[0], result.outputs[2], atol=1e-5)


def test_its_samples_follow_the_prompt():
    """Eight caption-style prompts: the checker (which says no to anything but one clear shape)
    must read every asked attribute in at least six."""
    rng = np.random.default_rng(5)
    hits = 0
    for i in range(8):
        attrs = data.random_attributes(rng)
        image = polydiff.generate("image", data.caption(**attrs), backend=TURBO, n=1, seed=100 + i).outputs[0]
        hits += read_attributes(image) == attrs
    assert hits >= 6, hits


def test_inpainting_keeps_the_known_pixels():
    init = polydiff.generate("image", "a large blue square in the center", n=1, seed=3).outputs[0]
    mask = np.zeros((32, 32), np.float32)
    mask[:, 16:] = 1
    out = polydiff.generate("image", "a large blue square in the center", task="inpaint", backend=TURBO,
                            init=init.permute(1, 2, 0).numpy(), mask=mask, n=1, seed=0).outputs[0]
    assert torch.allclose(out[:, :, :16], init[:, :, :16], atol=1e-6)


@pytest.mark.parametrize("args, needle", [
    (["--steps", "20"], "steps: backend 'shapes-turbo' is a 4-step"),
    (["--guidance", "5"], "guidance: backend 'shapes-turbo' has guidance 3 distilled in"),
    (["--sampler", "unipc"], "sampler: backend 'shapes-turbo' samples with ddim"),
])
def test_the_cli_refuses_what_it_was_not_trained_for(tmp_path, args, needle):
    run = CliRunner().invoke(cli, ["generate", "image", "a red circle", "--backend", TURBO, "-o", str(tmp_path / "o"),
                                   "--quiet", *args])
    assert run.exit_code == 1 and needle in run.output and "Traceback" not in run.output, run.output
    assert not (tmp_path / "o").exists()


def test_img2img_is_refused_not_run_from_an_untrained_time():
    init = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(polydiff.InvalidInputError, match="task: img2img starts part-way"):
        polydiff.generate("image", "a red circle", task="img2img", init=init, backend=TURBO, n=1, seed=0)


def test_the_evaluator_scores_the_student_and_reports_what_it_refuses(tmp_path):
    report = polydiff.evaluate("image", tmp_path / "eval", quick=True, backend=TURBO)
    assert report["backend"] == TURBO and report["steps"] == 4
    assert "refused" in report["editing"]["denoise"] and "gain_db" in report["editing"]["inpaint"]
    assert "refused by shapes-turbo" in (tmp_path / "eval" / "report.md").read_text()
