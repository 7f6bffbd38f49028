"""Every command README.md and docs/*.md show runs as written, as far as can be checked without running it: Hydra
commands compose with their tool's config (so every key and group exists), argparse commands parse, the Python
examples call what exists; the README stays short and the generated tables match bench/results/."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from conftest import ROOT
from crnn_lit.config import compose_config

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HYDRA_TOOLS = ("train", "evaluate", "predict", "export")  # each composes conf/<tool>.yaml
ARGPARSE_TOOLS = {"data": "crnn_lit.data.cli", "checkpoint": "crnn_lit.checkpoint",
                  "transcription.lm": "crnn_lit.transcription.lm"}
SCRIPT_TOOLS = {"lm": "transcription.lm"}  # installed scripts named apart from their module: crnn-lit-lm
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
GENERATED = re.compile(r"<!-- gen:([\w-]+) -->.*?<!-- /gen:\1 -->", re.DOTALL)
PLACEHOLDER = re.compile(r"<[^<>\n]*>|…")  # <run dir>, <checkpoint>, …: any value does
# inline `key=value` spans in prose; generic syntax (`key=value`) and environment variables are not overrides
OVERRIDE = re.compile(r"^~[a-z_][\w./@-]*$|^(\+\+?)?[a-z_][\w./@-]*=(?!=)\S*$")  # not pip's torch==2.13
NOT_OVERRIDES = {"key=value", "group=option"}


@dataclass(frozen=True)
class Command:
    where: str  # file:line
    tool: str  # train | evaluate | predict | export | data | checkpoint | transcription.lm | "" (an override span)
    args: tuple[str, ...]
    multirun: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.tool} {' '.join(self.args)}"


def _command(tokens: list[str], where: str) -> Command | None:
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):  # OMP_NUM_THREADS=1 python ...
        tokens = tokens[1:]
    if tokens[:2] == ["make", "train"]:
        args = [t for t in tokens[2:] if t.startswith("ARGS=")]
        return Command(where, "train", tuple(shlex.split(args[0][5:]))) if args else None
    if tokens[:2] == ["python", "-m"] and len(tokens) > 2 and tokens[2].startswith("crnn_lit."):
        tool, args = tokens[2][len("crnn_lit."):], tokens[3:]
    elif tokens and tokens[0].startswith("crnn-lit-"):
        tool, args = tokens[0][len("crnn-lit-"):], tokens[1:]
        tool = SCRIPT_TOOLS.get(tool, tool)
    else:
        return None
    if tool == "x" and not args:  # a generic mention: `python -m crnn_lit.<tool>`
        return None
    multirun = any(a in ("-m", "--multirun") for a in args)
    return Command(where, tool, tuple(a for a in args if a not in ("-m", "--multirun")), multirun)


def extract(path) -> tuple[list[Command], list[tuple[str, str]]]:
    """The commands of a markdown file (code blocks and inline spans) and its Python code blocks."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(ROOT).as_posix()
    commands, python = [], []
    for block in FENCE.finditer(text):
        line = text[: block.start()].count("\n") + 2
        where = f"{name}:{line}"
        if block[1] == "python":
            python.append((where, block[2]))
            continue
        if block[1] not in ("bash", "sh"):
            continue
        for i, raw in enumerate(block[2].replace("\\\n", " ").splitlines()):
            for part in re.split(r"\s(?:&&|;)\s", PLACEHOLDER.sub("x", raw)):
                try:
                    tokens = shlex.split(part, comments=True)
                except ValueError as err:
                    raise ValueError(f"{name}:{line + i}: {err}: {raw}") from None
                if tokens and (cmd := _command(tokens, f"{name}:{line + i}")):
                    commands.append(cmd)
    # prose without code blocks and generated tables (their overrides come from the records of runs that ran)
    prose = GENERATED.sub(lambda m: "\n" * m[0].count("\n"), FENCE.sub(lambda m: "\n" * m[0].count("\n"), text))
    for span in re.finditer(r"`([^`]+)`", prose):
        where = f"{name}:{prose[: span.start()].count(chr(10)) + 1}"
        body = " ".join(PLACEHOLDER.sub("x", span[1]).split())
        tokens = shlex.split(body) if body.count("'") % 2 == 0 else []
        if not tokens or body in NOT_OVERRIDES:
            continue
        if cmd := _command(tokens, where):
            commands.append(cmd)
        elif all(OVERRIDE.match(t) for t in tokens):
            commands.append(Command(where, "", tuple(tokens)))
    return commands, python


COMMANDS, PYTHON = [], []
for _doc in DOCUMENTS:
    _c, _p = extract(_doc)
    COMMANDS += _c
    PYTHON += _p


def first_of_sweeps(args: tuple[str, ...]) -> list[str]:
    """A multirun's overrides with every sweep (``a=1,2``) replaced by its first value."""
    out = []
    for arg, override in zip(args, OverridesParser.create().parse_overrides(list(args))):
        if override.is_sweep_override():
            arg = f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"
        out.append(arg)
    return out


@cache
def composes(tool: str, args: tuple[str, ...]) -> str | None:
    """None when ``args`` compose with conf/<tool>.yaml, else Hydra's message."""
    try:
        hydra_keys = any(a.lstrip("~+").startswith("hydra") for a in args)  # hydra.run.dir=, hydra/launcher=
        compose_config(list(args), config_name=tool, return_hydra_config=hydra_keys)
    except Exception as err:  # noqa: BLE001 — Hydra raises several types; the message is what matters
        return f"{type(err).__name__}: {err}"
    return None


class _Parsed(Exception):
    pass


@pytest.fixture
def parse_only(monkeypatch):
    """argparse tools stop right after parsing their arguments (nothing runs)."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)


def test_the_documents_show_enough_commands_to_check():
    tools = {c.tool for c in COMMANDS}
    assert len(COMMANDS) >= 80 and {*HYDRA_TOOLS, *ARGPARSE_TOOLS, ""} <= tools, sorted(tools)
    assert len(PYTHON) >= 2


def test_a_wrong_key_is_caught():
    """The check can fail: the README's former `lexicon.file` (the key is `lexicon.path`) does not compose."""
    assert composes("predict", ("inputs=x", "decoder=lexicon", "lexicon=file", "lexicon.file=words.txt"))
    assert composes("predict", ("inputs=x", "decoder=lexicon", "lexicon=file", "lexicon.path=words.txt")) is None


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c.tool in HYDRA_TOOLS], ids=str)
def test_hydra_command_composes(cmd, tmp_path, monkeypatch):
    args = tuple(first_of_sweeps(cmd.args) if cmd.multirun else cmd.args)
    if any(a.startswith("hydra.searchpath=") for a in args):  # the docs create my_conf/ in the line before
        monkeypatch.chdir(tmp_path)
        (tmp_path / "my_conf" / "decoder").mkdir(parents=True)
        (tmp_path / "my_conf" / "decoder" / "narrow_beam.yaml").write_text("defaults:\n  - beam\n  - _self_\n")
    assert composes(cmd.tool, args) is None, f"{cmd}\n{composes(cmd.tool, args)}"


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c.tool == ""], ids=str)
def test_inline_overrides_compose_with_some_tool(cmd):
    errors = []
    for tool in HYDRA_TOOLS:  # most spans are training overrides: stop at the first config they compose with
        if (error := composes(tool, cmd.args)) is None:
            return
        errors.append(error)
    pytest.fail(f"{cmd}: composes with none of {HYDRA_TOOLS}\n" + "\n".join(errors))


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c.tool in ARGPARSE_TOOLS], ids=str)
def test_argparse_command_parses(cmd, parse_only, capsys):
    main = importlib.import_module(ARGPARSE_TOOLS[cmd.tool]).main
    with pytest.raises((_Parsed, SystemExit)) as stopped:
        main(list(cmd.args))
    assert stopped.type is _Parsed, f"{cmd}\n{capsys.readouterr().err}"


def test_every_installed_script_is_a_documented_tool():
    """`crnn-lit-<name>` in pyproject runs the module the docs' tool name says (so a shown script is checked)."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    modules = {tool: f"crnn_lit.{tool}" for tool in HYDRA_TOOLS} | ARGPARSE_TOOLS
    assert len(scripts) == 7
    for name, target in scripts.items():
        tool = SCRIPT_TOOLS.get(name.removeprefix("crnn-lit-"), name.removeprefix("crnn-lit-"))
        assert target == f"{modules[tool]}:main", name


def test_unknown_tools_are_not_shown():
    known = {*HYDRA_TOOLS, *ARGPARSE_TOOLS, ""}
    assert not [str(c) for c in COMMANDS if c.tool not in known]


@pytest.mark.parametrize("where,code", PYTHON, ids=[w for w, _ in PYTHON])
def test_python_examples_call_what_exists(where, code):
    """Each block compiles, and every ``Recognizer.<method>(…, name=…)`` it shows exists with that keyword."""
    from crnn_lit.reading.recognizer import Recognizer

    checked = 0
    for node in ast.walk(ast.parse(code, where)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "Recognizer":
            method = getattr(Recognizer, node.func.attr, None)
            assert method is not None, f"{where}: Recognizer.{node.func.attr} does not exist"
            params = inspect.signature(method).parameters
            unknown = [k.arg for k in node.keywords if k.arg not in params]
            assert not unknown, f"{where}: Recognizer.{node.func.attr} takes no {unknown}"
            checked += 1
    assert checked or "Recognizer" not in code


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def _gen_tables():
    spec = importlib.util.spec_from_file_location("gen_tables", ROOT / "docs" / "gen_tables.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def test_generated_tables_match_their_records():
    gen = _gen_tables()
    assert gen.main(["--check"]) == 0, "run `python docs/gen_tables.py` (or `make docs`)"
    marked = sum(len(gen.MARKER.findall(p.read_text(encoding="utf-8"))) for p in gen.documents())
    assert marked >= len(gen.TABLES)  # every table is shown somewhere


def test_make_bench_runs_what_the_benchmark_table_lists():
    listed = set(re.findall(r"^\| `(\w+)\.py", _gen_tables().benchmarks(), re.MULTILINE))
    make = subprocess.run(["make", "-n", "bench", "CKPT=model.pt"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    run = set(re.findall(r"python bench/(\w+)\.py", make))
    assert len(listed) >= 8 and run == listed, (sorted(run), sorted(listed))


def test_make_docs_builds_the_site_strictly():
    """The target CI runs: the tables first, then a strict build into site/."""
    make = subprocess.run(["make", "-n", "docs"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "docs/gen_tables.py" in make and "mkdocs build --strict" in make


# A Sphinx role (:meth:`x`, :class:`~a.B`, …) is shown raw by mkdocstrings: the API page's references are markdown
# cross-references, [`name`][crnn_lit.module.Name], where the page renders the target, else plain code spans.
SPHINX_ROLE = re.compile(r":(?:py:)?(?:meth|class|func|attr|mod|data|obj|exc|const|ref):`")


def test_sources_hold_no_sphinx_roles():
    found = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
             for path in sorted((ROOT / "src").rglob("*.py"))
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if SPHINX_ROLE.search(line)]
    assert not found, "use [`name`][crnn_lit.module.name] or ``name``:\n" + "\n".join(found)


def test_sphinx_role_check_can_fail():
    assert SPHINX_ROLE.search("see :meth:`Recognizer.read`") and SPHINX_ROLE.search(":class:`~crnn_lit.x.Y`")
    assert not SPHINX_ROLE.search("see [`read`][crnn_lit.reading.recognizer.Recognizer.read], ``a:b``")


def _mkdocs_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_site_is_made_to_be_opened_from_disk():
    """README: open site/index.html. From file:// a link to a folder shows a listing, not its page, and the browser
    neither fetches the search index nor starts a worker: pages are files, the index is inlined (offline plugin)
    and the worker shim is ours (the plugin's default loads it from unpkg.com)."""
    cfg = _mkdocs_config()
    assert cfg["use_directory_urls"] is False
    assert {"search", "offline"} <= {p if isinstance(p, str) else next(iter(p)) for p in cfg["plugins"]}
    shims = cfg["extra"]["polyfills"]
    assert shims and all(not s.startswith(("http:", "https:")) and (ROOT / "docs" / s).is_file() for s in shims)


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the docs extra is not installed (`make docs`)")
def test_built_site_links_files_and_renders_every_cross_reference(tmp_path):
    """The strict build (any unresolved cross-reference is an error), then what a reader sees: the API page holds
    no raw Sphinx role and links its references, and every page links pages as .html files."""
    site = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                           capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    api = (site / "api.html").read_text(encoding="utf-8")
    raw = [api[m.start() - 80: m.end() + 60] for m in SPHINX_ROLE.finditer(api.replace("<code>", "`"))]
    assert not raw, raw
    assert 'href="#crnn_lit.reading.recognizer.Recognizer.from_checkpoint"' in api  # a docstring's cross-reference
    for page in site.glob("*.html"):
        if page.name == "404.html":  # served by a web server at the site's root, never opened from disk
            continue
        links = re.findall(r'href="([^"#]+)', page.read_text(encoding="utf-8"))
        local = [u for u in links if not re.match(r"[a-z]+:", u)]
        assert local and not [u for u in local if not re.search(r"\.(html|css|js|png|svg|ico|xml)$", u)], page.name
