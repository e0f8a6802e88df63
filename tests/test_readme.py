"""The README's commands are the ones CI runs, and its examples run as written."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_readme_install_and_test_commands():
    install_and_main, install_and_test = blocks("bash")[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    install, main = install_and_main.strip().split(" && ")
    install_again, test = install_and_test.strip().split(" && ")
    assert install == install_again
    assert main == "tf-mtl quickstart"
    assert install in ci.splitlines()
    assert test in ci.splitlines()


LEGACY = "# TF_USE_LEGACY_KERAS=1\n"


def test_python_examples_run(tmp_path):
    """Blocks that start with ``# TF_USE_LEGACY_KERAS=1`` run in that mode."""
    for i, code in enumerate(blocks("python")):
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"} if code.startswith(LEGACY) else None
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
        )
        assert result.returncode == 0, f"README python block {i} failed:\n{result.stderr[-3000:]}"
    assert (tmp_path / "mmoe.keras").exists()
    assert (tmp_path / "runs" / "mmoe" / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "saved_models" / "ranker" / "1" / "saved_model.pb").exists()
