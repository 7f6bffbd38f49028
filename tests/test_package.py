"""A real package: the built wheel carries conf/ and the runtime assets, and works installed, from any folder."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import ROOT

# the runtime assets of data/ that travel in the wheel (pyproject's package-data for crnn_lit.assets)
ASSET_DIRS = ("charsets", "colors", "fonts", "lm", "pretrained", "textures", "words")


def _git_files(*paths: str) -> list[str]:
    """Files git would put in a fresh clone (tracked, plus new files not ignored), relative to the checkout."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *paths], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


@pytest.mark.slow
def test_the_wheel_installs_and_runs_from_another_folder(tmp_path):
    # build from a clone-like copy (a build/ left in the checkout could leak stale files into the wheel)
    checkout = tmp_path / "checkout"
    for name in _git_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_bytes((ROOT / name).read_bytes())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-build-isolation", "--no-deps", "-w", tmp_path / "dist", checkout],
                   check=True)
    (wheel,) = (tmp_path / "dist").glob("crnn_lit-*.whl")

    names = {n for n in zipfile.ZipFile(wheel).namelist() if not n.startswith("crnn_lit-")}
    modules = {f"crnn_lit/{p.relative_to(ROOT / 'src/crnn_lit')}" for p in (ROOT / "src/crnn_lit").rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    assert {n for n in names if n.startswith("crnn_lit/conf/")} == {f"crnn_lit/{f}" for f in _git_files("conf")}
    assets = {f"crnn_lit/assets/{f.removeprefix('data/')}" for f in _git_files(*(f"data/{d}" for d in ASSET_DIRS))}
    assert {n for n in names if n.startswith("crnn_lit/assets/")} == assets  # exactly these: no shared data
    assert "crnn_lit/assets/pretrained/cpu_scene_text.pt" in assets and "crnn_lit/conf/train.yaml" in names

    # no torch download: installed without dependencies, run with this environment's python (and its torch)
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "my_conf" / "decoder").mkdir(parents=True)
    # a user's own config group entry, found through the Hydra search path (no fork)
    (elsewhere / "my_conf" / "decoder" / "narrow_beam.yaml").write_text("defaults:\n  - beam\n  - _self_\n"
                                                                          "beam_width: 3\n")
    font = ImageFont.truetype(str(ROOT / "data/fonts/dejavu/DejaVuSans-Bold.ttf"), 40)
    for word in ("coffee", "hotel"):
        image = Image.new("L", (int(font.getlength(word)) + 20, 56), 235)
        ImageDraw.Draw(image).text((10, 4), word, font=font, fill=20)
        image.save(elsewhere / f"{word}.png")
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    run = lambda *cmd, env=env: subprocess.run([str(c) for c in cmd], check=False, cwd=elsewhere, env=env,
                                               capture_output=True, text=True, timeout=600)

    where = run(sys.executable, "-c", "import crnn_lit.config as c; print(c.__file__, c.CONFIG_DIR, c.ASSETS_DIR)")
    assert where.stdout.split() == [str(site / "crnn_lit/config.py"), str(site / "crnn_lit/conf"),
                                    str(site / "crnn_lit/assets")], where.stderr

    # shipped assets by name from any folder (the README's data/lm/… spelling too); the shared data folder only
    # where CRNN_LIT_DATA says, never guessed from the working folder
    bare = {k: v for k, v in env.items() if k != "CRNN_LIT_DATA"}
    probe = run(sys.executable, "-c", ("from crnn_lit.config import compose_config as c; from crnn_lit.transcription.lm "
                                       "import CharNgramLM as L; print(L.load('data/lm/english_char6.json.gz').order, "
                                       "c([], config_name='evaluate').benchmark_root, sep='|')"), env=bare)
    assert probe.stdout.strip() == "6|<CRNN_LIT_DATA not set>/benchmarks", probe.stderr
    evaluate = run(site / "bin" / "crnn-lit-evaluate", env=bare)
    assert evaluate.returncode == 2 and evaluate.stderr.strip().splitlines() == [
        ("crnn_lit.evaluate: error: no benchmark found (IIIT5K, SVT, IC13, IC15, SVTP, CUTE80) under benchmark_root="
         "<CRNN_LIT_DATA not set>/benchmarks, which does not exist: set benchmark_root=<folder holding iiit5k/, svt/, "
         "…> or CRNN_LIT_DATA=<shared data folder holding benchmarks/>")]

    predict = run(site / "bin" / "crnn-lit-predict", "inputs=[coffee.png,hotel.png]",
                  "hydra.searchpath=[file://my_conf]", "decoder=narrow_beam")
    assert predict.returncode == 0, predict.stderr
    assert [line.split()[::2] for line in predict.stdout.splitlines()] == [["coffee.png", "coffee"],
                                                                            ["hotel.png", "hotel"]]
    assert len(list((elsewhere / "outputs" / "predict" / "runs").glob("*/predict.log"))) == 1  # outputs/ in cwd

    train = run(sys.executable, "-m", "crnn_lit.train", "debug=fdr")
    assert train.returncode == 0, train.stderr[-3000:]
    assert "global step: 1" in train.stdout
    run_dir = Path(re.search(r"run directory: (\S+)", train.stdout).group(1))
    assert run_dir.parent == elsewhere / "outputs" / "train" / "runs"
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_every_subpackage_is_listed_for_the_wheel():
    """pyproject lists packages by hand (its package-dir mappings rule out `packages.find`): a new subpackage
    must be added there, or the wheel would silently lack it."""
    import setuptools

    tomllib = pytest.importorskip("tomllib")
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted([*setuptools.find_packages(ROOT / "src"), "crnn_lit.conf", "crnn_lit.assets"])


def test_user_configs_join_through_the_hydra_search_path(tmp_path, monkeypatch):
    from crnn_lit.config import compose_config

    (tmp_path / "my_conf" / "decoder").mkdir(parents=True)
    (tmp_path / "my_conf" / "decoder" / "digits.yaml").write_text(
        "defaults:\n  - greedy\n  - _self_\nallowed_chars: '0123456789'\n")
    monkeypatch.chdir(tmp_path)  # file://my_conf is relative to the working directory
    cfg = compose_config(["hydra.searchpath=[file://my_conf]", "decoder=digits"], config_name="predict")
    assert (cfg.decoder._target_, cfg.decoder.allowed_chars) == ("crnn_lit.transcription.GreedyDecoder", "0123456789")
