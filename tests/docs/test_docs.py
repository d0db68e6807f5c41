"""The documentation site: it builds, its examples run, its commands exist.

* ``test_site_builds`` runs ``python -m mkdocs build --strict`` (skipped only when
  MkDocs is not installed).
* ``test_runnable_examples`` executes, page by page, every ```python block
  preceded by ``<!-- test -->`` in a fresh temporary directory (the blocks of a
  page share one namespace, in order). When such a block is directly followed by
  a ```text block, that block is the expected standard output and must match.
* ``test_commands`` checks every command of a ```bash block that starts with
  ``torchgeo-quake``, ``torchgeo``, ``python -m`` or ``python <script>.py``:
  ``<command> [subcommand] --help`` must succeed, files named by ``--config`` or
  run as scripts must exist, and complete ``torchgeo-quake`` and ``torchgeo``
  command lines must parse (argparse; Lightning's ``--print_config``), without
  running anything. Commands in a block preceded by ``<!-- planned -->`` are
  documented as not yet available: they must still fail, so the page is updated
  when the command lands.
* ``test_figures`` runs ``docs/scripts/make_figures.py --check``: every figure
  the pages reference is produced by the script, and every committed figure
  exists, is referenced and is small.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^`\s]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<name>test|planned)\s*-->\s*$")


@dataclass
class Block:
    """A fenced code block of a docs page."""

    page: Path
    line: int
    lang: str
    code: str
    marker: str | None
    expected: str | None = None


def pages() -> list[Path]:
    """Markdown pages of the site (sources under docs/, scripts excluded)."""
    return sorted(p for p in DOCS.rglob("*.md") if "scripts" not in p.parts)


def parse_blocks(page: Path) -> list[Block]:
    """Fenced code blocks of a page with their marker and expected output.

    Args:
        page: Markdown file

    Returns:
        The blocks in page order.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous = ""  # last non-blank line before the current position
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        marker = _MARKER.match(previous)
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                lang=match["info"].lower(),
                code="\n".join(body) + "\n",
                marker=marker["name"] if marker else None,
            )
        )
        previous = lines[j] if j < len(lines) else ""
        i = j + 1
    # A ```text block right after a tested ```python block is its expected output.
    for first, second in itertools.pairwise(blocks):
        between = lines[first.line : second.line - 1]
        closing = [
            n for n, text in enumerate(between) if text.strip().startswith("```")
        ]
        gap = between[closing[0] + 1 :] if closing else between
        if (
            first.marker == "test"
            and first.lang == "python"
            and second.lang == "text"
            and not any(text.strip() for text in gap)
        ):
            first.expected = second.code
    return blocks


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --------------------------------------------------------------------- build
def test_site_builds(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip(
            "MkDocs is not installed: install the docs tools "
            '(python -m pip install -e ".[docs]") to build the site'
        )
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    assert (tmp_path / "index.html").exists()


# ------------------------------------------------------------------ examples
_RUNNER = """
import contextlib, io, json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for block in blocks:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        print(f"FAILED {block['where']}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    expected = block["expected"]
    got = out.getvalue()
    sys.stdout.write(got)
    if expected is not None:
        norm = lambda s: [line.rstrip() for line in s.strip("\\n").splitlines()]
        if norm(got) != norm(expected):
            print(f"OUTPUT MISMATCH {block['where']}\\n--- page shows:\\n{expected}"
                  f"\\n--- code prints:\\n{got}", file=sys.stderr)
            sys.exit(2)
"""


def _tested_pages() -> list[Path]:
    return [p for p in pages() if any(b.marker == "test" for b in parse_blocks(p))]


def _run_page(page: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run the tested blocks of a page, in order, in *workdir*."""
    blocks = [
        {"code": b.code, "where": f"{_rel(page)}:{b.line}", "expected": b.expected}
        for b in parse_blocks(page)
        if b.marker == "test"
    ]
    workdir.mkdir(parents=True)
    (workdir / "blocks.json").write_text(json.dumps(blocks))
    (workdir / "runner.py").write_text(_RUNNER)
    return subprocess.run(
        [sys.executable, "runner.py", "blocks.json"],
        cwd=workdir,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _concurrently(function: Any, items: list[Any]) -> list[Any]:
    """Map *function* over *items* in threads (the work is in subprocesses)."""
    workers = max(2, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


@pytest.fixture(scope="module")
def page_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Path, subprocess.CompletedProcess[str]]:
    """Results of all pages' examples, run concurrently (one temp dir each)."""
    root = tmp_path_factory.mktemp("examples")
    pages_ = _tested_pages()
    results = _concurrently(
        lambda item: _run_page(item[1], root / f"page{item[0]}"),
        list(enumerate(pages_)),
    )
    return dict(zip(pages_, results, strict=True))


@pytest.mark.parametrize("page", _tested_pages(), ids=_rel)
def test_runnable_examples(
    page: Path, page_runs: dict[Path, subprocess.CompletedProcess[str]]
) -> None:
    assert all(b.lang == "python" for b in parse_blocks(page) if b.marker == "test")
    result = page_runs[page]
    assert result.returncode == 0, result.stderr[-6000:]


def _python_blocks() -> list[Block]:
    return [b for p in pages() for b in parse_blocks(p) if b.lang in ("python", "py")]


@pytest.mark.parametrize(
    "block", _python_blocks(), ids=lambda b: f"{_rel(b.page)}:{b.line}"
)
def test_python_blocks_compile(block: Block) -> None:
    """Every Python block compiles and imports only names the package has.

    Blocks that are not run (they need data the reader has) are still checked.
    """
    import ast
    import importlib

    where = f"{_rel(block.page)}:{block.line}"
    tree = ast.parse(block.code, filename=where)
    compile(tree, where, "exec")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if not node.module.startswith("torchgeo_quake"):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), (
                    f"{where}: {node.module} has no {alias.name}"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torchgeo_quake"):
                    importlib.import_module(alias.name)


# ------------------------------------------------------------------ commands
@dataclass(frozen=True)
class Command:
    """A documented shell command."""

    where: str
    text: str
    words: tuple[str, ...]
    argv: tuple[str, ...]  # program [subcommand]: what ``--help`` is run on
    files: tuple[str, ...]
    planned: bool


def _executable(name: str) -> str | None:
    if name in ("python", "python3"):
        return sys.executable
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def _commands() -> list[Command]:
    """Documented commands, one per distinct command line."""
    found: dict[tuple[tuple[str, ...], bool], Command] = {}
    for page in pages():
        for block in parse_blocks(page):
            if block.lang not in ("bash", "sh", "shell", "console"):
                continue
            text = block.code.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.strip().removeprefix("$ ")
                words = shlex.split(line, comments=True) if line else []
                if not words:
                    continue
                files: list[str] = []
                python = words[0] in ("python", "python3")
                if python and len(words) > 2 and words[1] == "-m":
                    prefix, rest = words[:3], words[3:]
                elif python and len(words) > 1 and words[1].endswith(".py"):
                    prefix, rest = words[:2], []
                    files.append(words[1])
                elif words[0] in ("torchgeo-quake", "torchgeo"):
                    prefix, rest = words[:1], words[1:]
                else:
                    continue
                if rest and re.fullmatch(r"[a-z][a-z0-9_-]*", rest[0]):
                    prefix = [*prefix, rest[0]]
                for k, word in enumerate(words[:-1]):
                    if word in ("--config", "-c") and words[0] == "torchgeo":
                        files.append(words[k + 1])
                planned = block.marker == "planned"
                key = (tuple(words), planned)
                if key not in found:
                    found[key] = Command(
                        where=f"{_rel(page)}:{block.line}",
                        text=line,
                        words=tuple(words),
                        argv=tuple(prefix),
                        files=tuple(files),
                        planned=planned,
                    )
    return list(found.values())


def _help(argv: tuple[str, ...]) -> tuple[bool, str]:
    """Run ``<argv> --help``.

    Returns:
        Whether it succeeded, and the end of its output.
    """
    executable = _executable(argv[0])
    if executable is None:
        return False, f"{argv[0]} not found"
    result = subprocess.run(
        [executable, *argv[1:], "--help"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode == 0, (result.stdout + result.stderr)[-3000:]


#: Parses complete command lines of the package's and TorchGeo's command-line
#: interfaces without running them: ``torchgeo-quake`` through its argparse
#: parser, ``torchgeo`` (Lightning CLI) with ``--print_config``, which validates
#: the configuration file and every override.
_PARSER = """
import contextlib, io, json, sys
results = []
for words in json.load(open(sys.argv[1])):
    out = io.StringIO()
    ok = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if words[0] == "torchgeo-quake":
                from torchgeo_quake.cli import build_parser
                build_parser().parse_args(words[1:])
                ok = True
            else:
                from torchgeo.main import main
                main([*words[1:], "--print_config"])
                ok = True
    except SystemExit as exit:
        ok = exit.code in (0, None)
    except Exception as error:
        out.write(f"{type(error).__name__}: {error}")
    results.append({"ok": ok, "output": out.getvalue()[-3000:]})
print(json.dumps(results))
"""


def _parse_all(commands: list[Command], workdir: Path) -> list[tuple[bool, str]]:
    """Parse complete ``torchgeo``/``torchgeo-quake`` command lines in one process."""
    if not commands:
        return []
    (workdir / "commands.json").write_text(json.dumps([c.words for c in commands]))
    (workdir / "parse.py").write_text(_PARSER)
    result = subprocess.run(
        [sys.executable, str(workdir / "parse.py"), str(workdir / "commands.json")],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        return [(False, result.stderr[-3000:])] * len(commands)
    return [(r["ok"], r["output"]) for r in json.loads(result.stdout.splitlines()[-1])]


def _needs_missing_tool(command: Command) -> bool:
    """Whether the command is MkDocs's and MkDocs is not installed."""
    return command.argv[:3] == ("python", "-m", "mkdocs") and (
        importlib.util.find_spec("mkdocs") is None
    )


@pytest.fixture(scope="module")
def command_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[Command, tuple[tuple[bool, str], tuple[bool, str] | None]]:
    """``--help`` and (for the CLIs) full parse of every command, concurrently."""
    commands = [c for c in _commands() if not _needs_missing_tool(c)]
    # `torchgeo` (Lightning CLI) is slow to start; its full parse below already
    # proves that the subcommand exists, so it gets no separate --help run.
    helps = sorted({c.argv for c in commands if c.words[0] != "torchgeo"})
    clis = [c for c in commands if c.words[0] in ("torchgeo-quake", "torchgeo")]
    workdir = tmp_path_factory.mktemp("commands")
    jobs: list[Any] = [*helps, "parse"]

    def run(job: Any) -> Any:
        return _parse_all(clis, workdir) if job == "parse" else _help(job)

    results = _concurrently(run, jobs)
    help_of = dict(zip(helps, results[:-1], strict=True))
    parse_of = dict(zip(clis, results[-1], strict=True))
    return {c: (help_of.get(c.argv) or parse_of[c], parse_of.get(c)) for c in commands}


@pytest.mark.parametrize("command", _commands(), ids=lambda c: c.text)
def test_commands(
    command: Command,
    command_runs: dict[Command, tuple[tuple[bool, str], tuple[bool, str] | None]],
) -> None:
    for name in command.files:
        assert (ROOT / name).exists(), (
            f"{command.where}: `{command.text}` uses {name}, which does not exist"
        )
    if _needs_missing_tool(command):
        pytest.skip("MkDocs is not installed")
    (helped, output), parsed = command_runs[command]
    shown = " ".join(command.argv)
    if command.planned:
        assert not helped and not (parsed and parsed[0]), (
            f"{command.where}: `{shown}` is documented as planned (not yet "
            f"available), but it now works. Update the page and drop its "
            "<!-- planned --> marker."
        )
        return
    assert helped, f"{command.where}: `{shown} --help` failed:\n{output}"
    if parsed is not None:
        assert parsed[0], (
            f"{command.where}: `{command.text}` does not parse:\n{parsed[1]}"
        )


# ------------------------------------------------------------ paper tables
PAPER = ROOT.parent / "shared" / "paper" / "russo2025-arxiv-2506.22338.txt"


def test_published_tables_match_paper() -> None:
    """Tables II-V on the site repeat the paper's numbers exactly, in order."""
    if not PAPER.exists():
        pytest.skip(f"paper text not found at {PAPER} (../shared/paper)")
    paper = PAPER.read_text(encoding="utf-8")
    page = (DOCS / "reproducing.md").read_text(encoding="utf-8")

    def between(text: str, start: str, end: str) -> str:
        first = text.index(start)
        return text[first : text.index(end, first)]

    pairs = {
        "II": (
            between(paper, "City\t#Intact", "C. Dataset Creation"),
            between(page, "| City | #Intact", "</div>"),
            r"\d[\d,]*",
        ),
        "III": (
            between(paper, "Metric\tSAR + FTP", "TABLE IV"),
            between(page, "## Table III", "## Table IV"),
            r"\d\.\d{3}",
        ),
        "IV": (
            between(paper, "City\tSimulation", "Fig. 6."),
            between(page, "| City | Inputs", "</div>"),
            r"\d\.\d{3}",
        ),
        "V": (
            between(paper, "Metric\tSun et al.", "* SAR data from Capella"),
            between(page, "| Metric | Sun", "</div>"),
            r"\d\.\d{3}",
        ),
    }
    for table, (published, shown, number) in pairs.items():
        expected = re.findall(number, published)
        assert expected, f"Table {table} not found in the paper text"
        assert re.findall(number, shown) == expected, f"Table {table} differs"


# ------------------------------------------------------------------- figures
def test_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(DOCS / "scripts" / "make_figures.py"), "--check"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


#: Longest code line that the site shows without a horizontal scroll bar.
MAX_CODE_LINE = 80


def test_code_lines_fit() -> None:
    """Code blocks fit the page width of the site (no horizontal scrolling)."""
    long = [
        f"{_rel(b.page)}:{b.line + i + 1} ({len(line)} characters)"
        for p in pages()
        if "dev" not in p.parts
        for b in parse_blocks(p)
        for i, line in enumerate(b.code.splitlines())
        if len(line) > MAX_CODE_LINE
    ]
    assert not long, f"code lines longer than {MAX_CODE_LINE} characters: {long}"


def test_parser_finds_markers() -> None:
    """The block parser sees the markers and the expected outputs."""
    blocks = [b for p in pages() for b in parse_blocks(p)]
    assert any(b.marker == "test" for b in blocks)
    assert any(b.expected is not None for b in blocks)
