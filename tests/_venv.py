"""A throw-away virtual environment for tests that pip-install plugins.

It reuses this environment's packages through a ``.pth`` file (torch is not installed again) but
installs into its own folder, so nothing a test installs reaches the project's ``.venv``. Its
``bin`` holds ``python`` and a ``polydiff`` command, and comes first on the ``PATH`` of ``env``:
commands run in it as a user's would in an activated virtual environment.
"""
from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Venv:
    folder: Path
    python: Path
    env: dict

    def run(self, *args, cwd, timeout=300, check=True):
        """Run a command (``bash -c`` when given one string) inside the environment."""
        command = ["bash", "-euo", "pipefail", "-c", args[0]] if len(args) == 1 else list(args)
        proc = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))!r} exited {proc.returncode}\n"
                                 f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
        return proc


def make_venv(folder: Path) -> Venv:
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "zz_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    script = folder / "bin" / "polydiff"  # what `pip install polydiff` would put there
    script.write_text(f"#!{python}\nimport sys\nfrom polydiff.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("POLYDIFF_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(folder / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    env["VIRTUAL_ENV"] = str(folder)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Build with the setuptools installed here rather than fetching one for an isolated build, so
    # the tests also pass offline (pip's quirk: the value 0 turns build isolation *off*).
    env["PIP_NO_BUILD_ISOLATION"] = "0"
    return Venv(folder, python, env)
