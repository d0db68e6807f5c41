"""The documentation site: it builds, its examples run, its commands exist.

* ``test_site_builds`` runs ``python -m mkdocs build --strict`` once (skipped only
  when MkDocs is not installed); ``test_api_covers_public_names`` checks that the
  built API reference has an entry for every public module and every name of
  every ``__all__`` of the package, and ``test_public_names_have_docstrings``
  that each of those has a docstring.
* ``test_runnable_examples`` runs, page by page and in page order, in a fresh
  temporary directory (holding copies of ``experiments/`` and ``benchmarks/``):

  - every ```python block preceded by ``<!-- test -->`` (the blocks of a page
    share one namespace);
  - every ```bash block preceded by ``<!-- run -->``, with ``bash -euo pipefail``
    and the package's commands on ``PATH``;
  - hidden set-up steps, which the site does not show: an HTML comment
    ``<!-- test-setup: COMMAND -->`` or ``<!-- test-setup`` (optionally
    ``python``) followed by lines of code and a closing ``-->``.

  When a tested or run block is directly followed by a ```text block, that block
  is the expected standard output and must match (trailing spaces and blank
  edges ignored). In the expected text ``…`` matches any text within a line, and
  a line holding only ``…`` matches any number of lines: use them for timings
  and other output that varies, so that what the page shows is still checked.
* ``test_commands`` checks every command of a ```bash block that starts with
  ``torchgeo-quake``, ``torchgeo``, ``python -m`` or ``python <script>.py``:
  ``<command> [subcommand] --help`` must succeed, files named by ``--config`` or
  run as scripts must exist, and complete ``torchgeo-quake`` and ``torchgeo``
  command lines must parse (argparse; Lightning's ``--print_config``), without
  running anything. Commands in a block preceded by ``<!-- planned -->`` are
  documented as not yet available: they must still fail, so the page is updated
  when the command lands.
* ``test_figures`` runs ``docs/scripts/make_figures.py --check``: every figure
  the pages reference is produced by the script and committed, and every
  committed figure is current (its manifest entry matches the inputs the script
  would draw it from now).
* ``test_screenshots`` (only where Chromium is installed) renders the Home and
  Quickstart pages of the built site in headless Chromium with
  ``docs/scripts/screenshot.py`` and checks that they are styled and not blank.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import os
import pkgutil
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^`\s]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<name>test|run|planned)\s*-->\s*$")
_SETUP = re.compile(
    r"^\s*<!--\s*test-setup(?:\s+(?P<lang>bash|python))?\s*"
    r"(?::\s*(?P<inline>.*?)\s*-->)?\s*$"
)
#: Folders of the repository copied into the working directory of a page's
#: examples, so that commands can use them as the pages show (relative paths).
EXAMPLE_FOLDERS = ("experiments", "benchmarks")


@dataclass
class Block:
    """A fenced code block of a docs page."""

    page: Path
    line: int
    lang: str
    code: str
    marker: str | None  # "test", "run", "planned", "setup" or None
    expected: str | None = None

    @property
    def runs(self) -> bool:
        """Whether the block is executed by ``test_runnable_examples``."""
        return (self.marker, self.lang) in (
            ("test", "python"),
            ("run", "bash"),
            ("setup", "python"),
            ("setup", "bash"),
        )


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
        setup = _SETUP.match(lines[i])
        if setup:
            if setup["inline"] is not None:
                code, j = setup["inline"], i
            else:
                j = i + 1
                while j < len(lines) and "-->" not in lines[j]:
                    j += 1
                code = "\n".join(lines[i + 1 : j])
            blocks.append(
                Block(
                    page=page,
                    line=i + 1,
                    lang=setup["lang"] or "bash",
                    code=textwrap.dedent(code).strip() + "\n",
                    marker="setup",
                )
            )
            i = j + 1
            continue
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
    # A ```text block right after a tested or run block is its expected output.
    for first, second in itertools.pairwise(blocks):
        between = lines[first.line : second.line - 1]
        closing = [
            n for n, text in enumerate(between) if text.strip().startswith("```")
        ]
        gap = between[closing[0] + 1 :] if closing else between
        if (
            first.runs
            and first.marker != "setup"
            and second.lang == "text"
            and not any(text.strip() for text in gap)
        ):
            first.expected = second.code
    return blocks


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --------------------------------------------------------------------- build
def test_site_builds(site: Path) -> None:
    assert (site / "index.html").exists()
    assert (site / "api" / "cli.html").exists()
    # Material's offline plugin: the search index as a script, so that search
    # works in a site opened from disk.
    assert (site / "search" / "search_index.js").exists()


# ------------------------------------------------------------ API reference
PACKAGE = "torchgeo_quake"


def public_modules() -> list[str]:
    """The package and all its modules whose dotted names have no private part.

    Returns:
        Dotted module names, sorted.
    """
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def required_anchors() -> dict[str, list[str]]:
    """API-reference anchors that must exist, and what each stands for.

    Every public module has an entry (anchor = its dotted name); every name of
    its ``__all__`` has one where the object is defined: classes and functions
    in their ``__module__``, other objects (constants, type aliases) in any
    module of the package that holds the very same object under that name.

    Returns:
        Anchor -> descriptions (``module.name``) of the names needing it; a key
        of several alternatives is ``a|b``.

    Raises:
        AssertionError: If a public module has no ``__all__``.
    """
    modules = {name: importlib.import_module(name) for name in public_modules()}
    need: dict[str, list[str]] = {}
    for name, module in modules.items():
        need.setdefault(name, []).append(f"module {name}")
        exported = getattr(module, "__all__", None)
        assert exported is not None, (
            f"{name} has no __all__: list its public names there, so that the API "
            "reference and `from ... import *` know them"
        )
        for attr in exported:
            obj = getattr(module, attr)
            home = getattr(obj, "__module__", None)
            if (isinstance(obj, type) or callable(obj)) and (
                home and home.startswith(PACKAGE)
            ):
                key = f"{home}.{getattr(obj, '__qualname__', attr)}"
            else:
                holders = [
                    f"{other}.{attr}"
                    for other, mod in modules.items()
                    if vars(mod).get(attr) is obj
                ]
                key = "|".join(sorted(holders))
            need.setdefault(key, []).append(f"{name}.{attr}")
    return need


def test_api_covers_public_names(site: Path) -> None:
    """The API reference has an entry for every public module and exported name."""
    anchors: set[str] = set()
    for page in (site / "api").glob("*.html"):
        anchors |= set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
    missing = [
        f"{' and '.join(names)} (no anchor {key.replace('|', ' or ')})"
        for key, names in sorted(required_anchors().items())
        if not any(alternative in anchors for alternative in key.split("|"))
    ]
    assert not missing, (
        "not in the API reference (docs/api/): "
        + "; ".join(missing)
        + ". Add the module to a page's `<!-- api: ... -->` marker or a `:::` block."
    )


def test_public_names_have_docstrings() -> None:
    """Every exported name has a docstring, as the API reference renders it.

    Loaded with Griffe and the site's extension (which also reads Sphinx ``#:``
    comments above attributes), so this is the text mkdocstrings shows.
    """
    griffe = pytest.importorskip("griffe", reason="griffe comes with the docs extra")
    extensions = griffe.load_extensions(
        f"{DOCS / 'scripts' / 'griffe_rst.py'}:RstToMarkdown"
    )
    package = griffe.load(PACKAGE, search_paths=[str(ROOT)], extensions=extensions)
    undocumented = []
    for key, names in sorted(required_anchors().items()):
        paths = key.split("|")
        objects = []
        for path in paths:
            try:
                obj = (
                    package[path.removeprefix(PACKAGE + ".")]
                    if path != PACKAGE
                    else package
                )
            except KeyError:
                continue
            objects.append(obj.final_target if obj.is_alias else obj)
        if not any(o.docstring and o.docstring.value.strip() for o in objects):
            undocumented.append(f"{paths[0]} ({', '.join(names)})")
    assert not undocumented, f"no docstring: {undocumented}"


# ------------------------------------------------------------------ examples
#: Compares a page's expected output with what the code printed (in the runner).
_MATCHES = """
import re, sys
from functools import lru_cache


def matches(expected, got):
    # '…' matches any text within a line; a line of only '…' any lines.
    want = [line.rstrip() for line in expected.strip("\\n").splitlines()]
    have = [line.rstrip() for line in got.strip("\\n").splitlines()]
    patterns = [
        None if w.strip() == "\\u2026"
        else re.compile(".*?".join(map(re.escape, w.split("\\u2026"))) + r"\\Z")
        for w in want
    ]

    @lru_cache(maxsize=None)
    def match(i, j):
        if i == len(want):
            return j == len(have)
        if patterns[i] is None:
            return match(i + 1, j) or (j < len(have) and match(i, j + 1))
        found = j < len(have) and patterns[i].match(have[j])
        return bool(found) and match(i + 1, j + 1)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * (len(want) + len(have))))
    return match(0, 0)
"""

#: Runs the blocks of one page (``blocks.json``) in order, in the current folder.
_RUNNER = (
    _MATCHES
    + """
import contextlib, io, json, subprocess, time, traceback

blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for block in blocks:
    start = time.perf_counter()
    if block["lang"] == "python":
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block["code"], block["where"], "exec"), namespace)
        except BaseException:
            print(f"FAILED {block['where']}", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
        got = out.getvalue()
    else:
        sys.stdout.flush()
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block["code"]],
            capture_output=True, text=True,
        )
        got = result.stdout
        if result.returncode != 0:
            print(f"FAILED {block['where']} (exit {result.returncode}):\\n"
                  f"{block['code']}\\n--- stdout:\\n{got[-3000:]}"
                  f"\\n--- stderr:\\n{result.stderr[-5000:]}", file=sys.stderr)
            sys.exit(1)
    print(f"[{block['where']}: {time.perf_counter() - start:.1f} s]", file=sys.stderr)
    sys.stdout.write(got)
    expected = block["expected"]
    if expected is not None and not matches(expected, got):
        print(f"OUTPUT MISMATCH {block['where']}\\n--- page shows:\\n{expected}"
              f"\\n--- code prints:\\n{got}", file=sys.stderr)
        sys.exit(2)
"""
)


def _tested_pages() -> list[Path]:
    return [p for p in pages() if any(b.runs for b in parse_blocks(p))]


def _run_page(page: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run the tested, run and set-up blocks of a page, in order, in *workdir*."""
    blocks = [
        {
            "code": b.code,
            "lang": b.lang,
            "where": f"{_rel(page)}:{b.line}",
            "expected": b.expected,
        }
        for b in parse_blocks(page)
        if b.runs
    ]
    workdir.mkdir(parents=True)
    for folder in EXAMPLE_FOLDERS:
        if (ROOT / folder).is_dir():
            shutil.copytree(
                ROOT / folder,
                workdir / folder,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    (workdir / "blocks.json").write_text(json.dumps(blocks))
    (workdir / "runner.py").write_text(_RUNNER)
    bin_dir = str(Path(sys.executable).parent)
    env = {**ENV, "PATH": os.pathsep.join([bin_dir, ENV.get("PATH", "")])}
    return subprocess.run(
        [sys.executable, "runner.py", "blocks.json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
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
    for block in parse_blocks(page):
        if block.marker in ("test", "run"):
            assert block.runs, (
                f"{_rel(page)}:{block.line}: <!-- {block.marker} --> marks a "
                f"```{block.lang} block; it runs ```python (test) or ```bash (run)"
            )
    result = page_runs[page]
    assert result.returncode == 0, result.stderr[-8000:]


def test_output_matching() -> None:
    """Expected outputs with ``…`` wildcards match what they should, only that."""
    namespace: dict[str, Any] = {}
    exec(_MATCHES, namespace)
    matches = namespace["matches"]
    assert matches("a\nb\n", "a  \nb\n\n")
    assert not matches("a\nb", "a\nc")
    assert matches("took … s", "took 1.5 s")
    assert not matches("took … s", "took 1.5 min")
    assert matches("start\n…\nend", "start\nx\ny\nend")
    assert matches("start\n…\nend", "start\nend")
    assert not matches("start\n…\nend", "start\nx")
    assert not matches("a", "a\nb")


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
) -> dict[
    tuple[tuple[str, ...], bool], tuple[tuple[bool, str], tuple[bool, str] | None]
]:
    """``--help`` and (for the CLIs) full parse of every command, concurrently.

    Keyed by the command's words and planned flag, not its line, so that an edit
    elsewhere on a page during the test run does not matter.
    """
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
    return {
        (c.words, c.planned): (help_of.get(c.argv) or parse_of[c], parse_of.get(c))
        for c in commands
    }


@pytest.mark.parametrize("command", _commands(), ids=lambda c: c.text)
def test_commands(
    command: Command,
    command_runs: dict[
        tuple[tuple[str, ...], bool], tuple[tuple[bool, str], tuple[bool, str] | None]
    ],
) -> None:
    for name in command.files:
        assert (ROOT / name).exists(), (
            f"{command.where}: `{command.text}` uses {name}, which does not exist"
        )
    if _needs_missing_tool(command):
        pytest.skip("MkDocs is not installed")
    key = (command.words, command.planned)
    if key not in command_runs:
        pytest.fail(f"{command.where}: the page changed during the test run: rerun")
    (helped, output), parsed = command_runs[key]
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
    assert any(b.marker == "run" for b in blocks)
    assert any(b.expected is not None for b in blocks)


def test_parser_reads_run_and_setup_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            <!-- test-setup: echo hidden -->

            <!-- test-setup python
                x = 1
                y = 2
            -->

            <!-- run -->
            ```bash
            echo shown
            ```

            ```text
            shown
            ```

            ```bash
            echo only checked
            ```

            <!-- test -->
            ```bash
            echo wrongly marked
            ```
            """
        )
    )
    blocks = parse_blocks(page)
    assert [(b.marker, b.lang, b.runs) for b in blocks] == [
        ("setup", "bash", True),
        ("setup", "python", True),
        ("run", "bash", True),
        (None, "text", False),
        (None, "bash", False),
        ("test", "bash", False),
    ]
    assert blocks[0].code == "echo hidden\n"
    assert blocks[1].code == "x = 1\ny = 2\n"
    assert blocks[2].expected == "shown\n"
    assert blocks[4].expected is None
