"""The documents name only what exists: every `vsr` command and option, `python -m train` subcommand, benchmark
script, config, repository path, relative link and image they give is checked against the tree as it is at test
time (configs are renamed and removed; a document that still names one fails here). README and BENCHMARKS stay
short, and no document is a diary (no "stop N", no issue numbers).

Placeholders are written in capitals (`NAME_xS.toml`, `benchmarks/X.py`) and are not checked."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "BENCHMARKS.md", *(ROOT / "docs").rglob("*.md")])
TOP = ("benchmarks", "docs", "engines", "samples", "tests", "train", "vsr", ".ci")
SEPARATORS = ("&&", "||", ";", "|", "#")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _code(text: str) -> list[str]:
    """The document's code: fenced blocks, indented blocks and inline spans, one string each."""
    fenced = re.findall(r"^ {0,3}```[^\n]*\n(.*?)^ {0,3}```", text, flags=re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^ {0,3}```[^\n]*\n.*?^ {0,3}```", "", text, flags=re.MULTILINE | re.DOTALL)
    indented = [b for b in re.findall(r"(?:^(?: {4}|\t)[^\n]*\n?)+", prose, flags=re.MULTILINE)
                if not b.lstrip().startswith(("-", "*", "|"))]
    # an inline span may wrap onto the next line of its paragraph
    inline = [re.sub(r"\s*\n\s*", " ", c) for c in re.findall(r"(?<!`)`((?:[^`\n]|\n(?![ \t]*\n))+)`(?!`)", prose)]
    return fenced + indented + inline


def _commands(text: str, prefix: str) -> list[list[str]]:
    """Each command line in the document's code that runs `prefix` (e.g. 'vsr'), as its words after it, up to a
    comment or the next command."""
    found = []
    for snippet in _code(text):
        for line in snippet.replace("\\\n", " ").splitlines():
            line = re.split(r"(?:^|\s)#", line)[0]  # a shell comment
            for m in re.finditer(rf"(?:^|[\s(]){re.escape(prefix)}\s+(\S.*)", line):
                words = []
                for w in m.group(1).split():
                    if w in SEPARATORS or w.startswith("#"):
                        break
                    words.append(w.rstrip(")"))
                found.append(words)
    return found


def _options(command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}


@cache
def _vsr_commands() -> dict:
    import typer

    from vsr.cli.app import app

    return dict(typer.main.get_command(app).commands)


@cache
def _train_commands() -> dict:
    import typer

    from train.__main__ import SUBCOMMANDS, train_app

    return {"": typer.main.get_command(train_app),
            **{name: typer.main.get_command(sub) for name, sub in SUBCOMMANDS.items()}}


def _placeholder(word: str) -> bool:
    return bool(re.search(r"[A-Z<>*…]", word))


def _check_options(words: list[str], command, where: str) -> list[str]:
    """The words that look like options (not negative numbers, not placeholders) and that `command` does not take."""
    known = _options(command)
    return [f"{where}: {w}" for w in words if w.startswith("-") and not re.fullmatch(r"-[\d.]+", w)
            and not _placeholder(w) and w.split("=")[0] not in known]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_vsr_commands_and_options_exist(doc):
    commands = _vsr_commands()
    bad = []
    for words in _commands(doc.read_text(encoding="utf-8"), "vsr"):
        name = words[0]
        if name.startswith("-") or _placeholder(name):
            continue
        if name not in commands:
            bad.append(f"vsr {name}: no such command (registered: {', '.join(sorted(commands))})")
        else:
            bad += _check_options(words[1:], commands[name], f"vsr {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_train_commands_exist(doc):
    commands = _train_commands()
    bad = []
    for words in _commands(doc.read_text(encoding="utf-8"), "python -m train"):
        sub = words[0] if words and words[0] in commands else ""
        args = words[1:] if sub else words
        if not sub and args and not (args[0].startswith("-") or args[0].endswith(".toml") or _placeholder(args[0])):
            bad.append(f"python -m train {args[0]}: neither a subcommand ({', '.join(c for c in commands if c)}), "
                       "a config nor an option")
        bad += _check_options(args, commands[sub], f"python -m train {sub}".rstrip())
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_scripts_configs_and_paths_exist(doc):
    """Benchmark scripts and configs wherever they are named; other repository paths where they are code."""
    text = doc.read_text(encoding="utf-8")
    missing: dict[str, str] = {}
    for script in re.findall(r"benchmarks/[\w./-]+\.py", text):
        if not _placeholder(script) and not (ROOT / script).is_file():
            missing.setdefault(script, "no such script")
    for name in re.findall(r"(?<![\w./<>-])([\w./-]+\.toml)\b", text):  # a bare name is one of train/configs/
        if not _placeholder(name) and not any(p.is_file() for p in (ROOT / name, ROOT / "train" / "configs" / name)):
            missing.setdefault(name, "no such config")
    for snippet in _code(text):
        for path in re.findall(rf"(?<![\w./-])((?:{'|'.join(map(re.escape, TOP))})/[\w./-]*)", snippet):
            path = path.rstrip(".")
            if not _placeholder(path) and not (ROOT / path).exists():
                missing.setdefault(path, "not in the repository")
    assert not missing, "\n".join(f"{k}: {v}" for k, v in missing.items())


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = re.sub(r"^ {0,3}```.*?^ {0,3}```", "", doc.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.MULTILINE):
        slug = _slug(heading)
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_links_and_images_exist(doc):
    text = re.sub(r"^ {0,3}```.*?^ {0,3}```", "", doc.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    bad = []
    for target in re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            bad.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            bad.append(f"{target}: no heading with that anchor in {file.name}")
    assert not bad, "\n".join(bad)


def test_readme_and_benchmarks_stay_short():
    readme = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").count("\n")
    assert readme <= 170, f"README.md has {readme} lines: details belong in docs/"
    assert benchmarks <= 300, f"BENCHMARKS.md has {benchmarks} lines: current tables only, history is in git"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_documents_are_not_a_diary(doc):
    text = doc.read_text(encoding="utf-8")
    found = re.findall(r"\bstops?\s+\d+|\bissues?\s+#?\d+|\(#\d+\)", text, flags=re.IGNORECASE)
    assert not found, f"{doc.name}: {found} (the history is in git)"


def _sections(doc: Path) -> list[str]:
    return [re.sub(r"[`*]", "", h).strip()
            for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", doc.read_text(encoding="utf-8"), flags=re.MULTILINE)]


def test_code_cites_sections_that_exist():
    """A comment that sends the reader to a section (`BENCHMARKS.md, "Scene cuts"`) names one that exists (a heading
    that starts with the quoted words)."""
    docs = {d.name: d for d in DOCS}
    bad = []
    for py in sorted(p for top in ("engines", "vsr", "train", "benchmarks") for p in (ROOT / top).rglob("*.py")):
        text = re.sub(r"\s*\n\s*(#\s*)?", " ", py.read_text(encoding="utf-8"))
        for name, section in re.findall(r"(\w[\w.-]*\.md)\)?[,:]?\s+\(?\"([^\"]+)\"", text):
            if name in docs and not any(h.startswith(section) for h in _sections(docs[name])):
                bad.append(f"{py.relative_to(ROOT)}: {name} \"{section}\"")
    assert not bad, "\n".join(bad)


def test_the_video_extensions_a_folder_job_picks_up_are_the_documented_ones():
    from vsr.formats import VIDEO_EXTS

    listed = re.search(r"It picks up `([^`]*)`", (ROOT / "docs" / "long-jobs.md").read_text(encoding="utf-8"))
    assert listed and set(listed.group(1).split()) == VIDEO_EXTS
