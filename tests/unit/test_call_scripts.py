"""Hotline call scripts are checked on load: each mistake is an error naming the file and
the node; the shipped scripts pass and cover the topics the hotline must have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.hotline.call_scripts import ScriptError, load_script, load_scripts, suggested

T = "{ru: т, kk: т, en: t}"


def write(tmp_path: Path, nodes: str, *, start: str = "a", name: str = "s.yml") -> Path:
    path = tmp_path / name
    path.write_text(f"id: s\ntitle: {T}\nstart: {start}\nnodes:\n{nodes}", "utf-8")
    return path


def test_the_shipped_scripts_load_and_cover_the_required_topics() -> None:
    scripts = load_scripts()
    assert {"symptoms", "quarantine", "permits", "status_colour", "venue_complaint"} <= set(
        scripts
    )
    assert "test_results" in scripts
    ends = {n.end for n in scripts["symptoms"].nodes.values() if n.end}
    assert {"ambulance", "referred"} <= ends  # 103, or the polyclinic
    assert [s.id for s in suggested(["faq_symptoms"])] == ["symptoms"]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (f"  a:\n    say: {T}\n    next: b\n", "s.yml: node 'a': goes to 'b', no such node"),
        (f"  a:\n    say: {T}\n", "s.yml: node 'a': a dead end"),
        (f"  a:\n    ask: {T}\n    options: []\n", "s.yml: node 'a': a dead end"),
        (
            f"  a:\n    say: {T}\n    next: b\n  b:\n    ask: {T}\n    options:\n"
            f"      - label: {T}\n        next: a\n",
            "s.yml: node 'a' is in a loop with no way out to an end",
        ),
        (
            f"  a:\n    say: {T}\n    end: answered\n  b:\n    say: {T}\n    end: answered\n",
            "s.yml: node 'b' is never reached from the start",
        ),
        (f"  a:\n    say: {T}\n    end: maybe\n", "s.yml: node 'a': end must be one of"),
        ("  a:\n    say: {ru: т, en: t}\n    end: answered\n", "the text is missing in kk"),
        (
            '  a:\n    say: {ru: "{week}", kk: т, en: t}\n    end: answered\n',
            "no rule named {week} (green_validity)",
        ),
    ],
)
def test_each_mistake_names_the_file_and_the_node(
    tmp_path: Path, nodes: str, message: str
) -> None:
    with pytest.raises(ScriptError) as caught:
        load_script(write(tmp_path, nodes))
    assert message in str(caught.value)


def test_a_loop_with_a_way_out_is_fine(tmp_path: Path) -> None:
    nodes = (
        f"  a:\n    ask: {T}\n    options:\n      - label: {T}\n        next: a\n"
        f"      - label: {T}\n        next: b\n  b:\n    say: {T}\n    end: callback\n"
    )
    script = load_script(write(tmp_path, nodes))
    assert script.topic == "script_s"


def test_a_missing_start_and_a_duplicate_id_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=re.escape("start 'x' is not a node")):
        load_script(write(tmp_path, f"  a:\n    say: {T}\n    end: answered\n", start="x"))
    folder = tmp_path / "scripts"
    folder.mkdir()
    for name in ("one.yml", "two.yml"):
        write(folder, f"  a:\n    say: {T}\n    end: answered\n", name=name)
    with pytest.raises(ScriptError, match=re.escape("two.yml: id 's' is also one.yml's")):
        load_scripts(folder)


def test_a_script_names_a_rule_by_its_placeholder(tmp_path: Path) -> None:
    said = '{ru: "Зелёный: {green_validity}.", kk: т, en: "Green: {green_validity}."}'
    script = load_script(write(tmp_path, f"  a:\n    say: {said}\n    end: answered\n"))
    assert script.nodes["a"].say == {
        "ru": "Зелёный: 72 часа.",
        "kk": "т",
        "en": "Green: 72 hours.",
    }
