"""README.md's commands run as a new user types them: `python` (or `.venv/bin/python`) is this virtualenv's, each
command runs in a fresh folder holding what it names (photos/ with three word images, words.txt), and each must
end with exit status 0 and what it promises (the words read, the file written). tests/test_docs.py checks that
every command of every page composes or parses; this file runs the README's cheap ones."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import ROOT, SHARED_DATA

# Not run, and why. `make setup/train/test` install the virtualenv these tests run in, train for about 15 minutes
# and run this suite. Training (`train`) and the benchmark run (`evaluate`) take minutes: tests/test_train.py and
# tests/test_evaluate.py run their configs on small data. `checkpoint import` needs EasyOCR's english_g2.pth, which
# is not shipped (tests/test_import.py builds stand-ins).
NOT_RUN = {"make", "train", "evaluate", "checkpoint"}
WORDS = {"hello.png": "HELLO", "station.png": "Station", "2024.png": "2024"}  # photos/: file → text drawn


def readme_commands() -> list[tuple[int, list[str]]]:
    """(line, tokens) of every command in README.md's shell blocks and in its tool table's example column."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.finditer(r"^```(?:bash|sh)\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        first = text[: block.start()].count("\n") + 2
        for i, line in enumerate(block[1].splitlines()):
            if tokens := shlex.split(line, comments=True):
                found.append((first + i, tokens))
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("| `") and (spans := re.findall(r"`([^`]+)`", line)) and "crnn_lit." in spans[-1]:
            found.append((i, shlex.split(spans[-1])))
    return found


def tool_of(tokens: list[str]) -> str:
    if tokens[0] == "make":
        return "make"
    assert tokens[0] in ("python", ".venv/bin/python") and tokens[1] == "-m", f"not a README tool command: {tokens}"
    return tokens[2].removeprefix("crnn_lit.")


COMMANDS = readme_commands()


def test_the_readme_shows_the_tools_and_the_checks_cover_them():
    tools = {tool_of(tokens) for _, tokens in COMMANDS}
    assert {"make", "predict", "train", "data", "export", "transcription.lm"} <= tools
    assert tools <= NOT_RUN | {"predict", "data", "export", "transcription.lm"}, "a README tool this file cannot check"


@pytest.fixture
def user_folder(tmp_path):
    """A folder as a user's: photos/ with three clean word crops, and a word list."""
    (tmp_path / "photos").mkdir()
    font = ImageFont.truetype(str(ROOT / "data" / "fonts" / "dejavu" / "DejaVuSans-Bold.ttf"), 40)
    for name, word in WORDS.items():
        image = Image.new("RGB", (30 + 30 * len(word), 60), "white")
        ImageDraw.Draw(image).text((15, 6), word, font=font, fill="black")
        image.save(tmp_path / "photos" / name)
    (tmp_path / "words.txt").write_text("hello\nstation\n", encoding="utf-8")
    return tmp_path


def run(tokens: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    done = subprocess.run([sys.executable, *tokens[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"{shlex.join(tokens)}\n{done.stderr[-2000:]}"
    return done


@pytest.mark.parametrize("line,tokens", [c for c in COMMANDS if tool_of(c[1]) not in NOT_RUN],
                         ids=[f"README.md:{line}" for line, tokens in COMMANDS if tool_of(tokens) not in NOT_RUN])
def test_readme_command_runs(line, tokens, user_folder):
    tool, args = tool_of(tokens), tokens[3:]
    if tool in ("predict", "export"):  # as written they log under the checkout's outputs/: here, the test's own
        tokens = [*tokens, f"hydra.run.dir={user_folder / 'run'}"]
    if tool == "predict":
        out = run(tokens, user_folder)
        rows = {Path(r.split()[0]).name: r.split()[-1] for r in out.stdout.splitlines() if r.startswith("photos/")}
        if "decoder=lexicon" in args:  # the word list's entries, lowercase, may come back in either case
            rows, expected = {n: t.lower() for n, t in rows.items()}, {n: w.lower() for n, w in WORDS.items()}
        else:
            expected = WORDS  # the default reader is cased
        assert rows == expected, out.stdout
        assert "3 read, 0 unreadable" in out.stderr
        if written := [a.split("=", 1)[1] for a in args if a.startswith("output=")]:
            assert len((user_folder / written[0]).read_text(encoding="utf-8").splitlines()) == 1 + len(WORDS)
    elif tool == "data":
        if not SHARED_DATA.is_dir():
            pytest.skip(f"no shared data at {SHARED_DATA}")
        out = run(tokens, ROOT)  # `../shared/data/...` is relative to the checkout
        assert re.search(r"^\d+ samples; \d+ usable", out.stdout, re.MULTILINE), out.stdout
    elif tool == "transcription.lm":
        out = run(tokens, user_folder)
        assert f"wrote {args[1]}" in out.stdout
        assert json.loads(gzip.decompress((user_folder / args[1]).read_bytes()))  # a gzipped JSON model
    elif tool == "export":
        run(tokens, user_folder)
        assert (user_folder / "run" / "model.onnx").stat().st_size > 100_000
        assert json.loads((user_folder / "run" / "model.onnx.json").read_text(encoding="utf-8"))["charset"]
