import subprocess
import sys
from pathlib import Path

from tools.sandbox import REPO_ROOT, copy_repo, init_repo, tool_env


def test_tool_env_puts_this_interpreter_first():
    env = tool_env({"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["PATH"].endswith("/usr/bin")
    assert env["DVC_NO_ANALYTICS"] == "1"


def test_copy_is_a_committed_repo_whose_remote_stays_inside(tmp_path):
    env = tool_env()
    repo = copy_repo(REPO_ROOT, tmp_path / "repo")
    init_repo(repo, tmp_path, env)
    git = ["git", "-C", str(repo)]
    assert (
        subprocess.run(
            [*git, "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout
        == ""
    )
    assert (
        subprocess.run(
            [*git, "branch", "--show-current"], capture_output=True, text=True, check=True
        ).stdout
        == "main\n"
    )
    assert (repo / "dvc.yaml").read_bytes() == (REPO_ROOT / "dvc.yaml").read_bytes()
    local = (repo / ".dvc" / "config.local").read_text()
    assert str(tmp_path / "storage") in local
