"""Hotline call scripts: YAML decision trees in flows/hotline/scripts/ that an agent walks
with buttons during a call.

A script has an ``id``, a ``title`` in ru/kk/en, the NLU ``intents`` that suggest it, a
``start`` node and ``nodes``. A node either

- says something and goes on: ``say`` with ``next``, or ends the call: ``say`` with
  ``end`` (an outcome: answered, callback, referred, ambulance); or
- asks the agent to ask the caller: ``ask`` with ``options``, each a ``label`` and the
  ``next`` node (this is how a script branches).

Every text is given in ru, kk and en; a rule's value is named by its placeholder
(``{green_validity}``: how long a negative result keeps a person green, from the status
rule), so a script says what the code does. Scripts are checked when they are loaded (so at
start-up): a node that is named but missing, a node that neither goes on nor ends (a
dead end), a node never reached from the start, and a loop that has no way out to an
end are each an error naming the file and the node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from presentation.rules import green_validity
from services.hotline import OUTCOMES
from services.languages import LANGUAGES

SCRIPTS_DIR = Path(__file__).with_name("scripts")
TOPIC_PREFIX = "script_"  # hotline_calls.topic of a call walked through a script
NAME = re.compile(r"[a-z0-9_]{1,40}")  # script and node ids travel in button data
PLACEHOLDER = re.compile(r"\{(\w+)\}")
RULES = {"green_validity": green_validity}


class ScriptError(ValueError):
    """A script file that cannot be used, with the file and node it is about."""


@dataclass(frozen=True)
class Option:
    label: dict[str, str]
    next: str


@dataclass(frozen=True)
class Node:
    id: str
    say: dict[str, str] | None = None
    ask: dict[str, str] | None = None
    options: tuple[Option, ...] = ()
    next: str | None = None
    end: str | None = None

    def successors(self) -> list[str]:
        return [o.next for o in self.options] + ([self.next] if self.next else [])


@dataclass(frozen=True)
class Script:
    id: str
    title: dict[str, str]
    intents: tuple[str, ...]
    start: str
    nodes: dict[str, Node]
    path: Path

    @property
    def topic(self) -> str:
        return TOPIC_PREFIX + self.id


def _texts(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ScriptError(f"{where}: must give the text in {', '.join(LANGUAGES)}")
    missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
    if missing:
        raise ScriptError(f"{where}: the text is missing in {', '.join(missing)}")
    return {lang: _with_rules(str(value[lang]).strip(), lang, where) for lang in LANGUAGES}


def _with_rules(said: str, lang: str, where: str) -> str:
    def value(found: re.Match[str]) -> str:
        rule = RULES.get(found.group(1))
        if rule is None:
            raise ScriptError(f"{where}: no rule named {found.group(0)} ({', '.join(RULES)})")
        return rule(lang)

    return PLACEHOLDER.sub(value, said)


def _node(node_id: str, raw: object, where: str) -> Node:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a node must be a mapping with say or ask")
    unknown = set(raw) - {"say", "ask", "options", "next", "end"}
    if unknown:
        raise ScriptError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    if ("say" in raw) == ("ask" in raw):
        raise ScriptError(f"{where}: a node either says (say) or asks (ask with options)")
    if "ask" in raw:
        options = raw.get("options")
        if not isinstance(options, list) or not options:
            raise ScriptError(f"{where}: a dead end: the question has no options")
        if "next" in raw or "end" in raw:
            raise ScriptError(f"{where}: a question goes on through its options only")
        parsed = []
        for i, option in enumerate(options):
            if not isinstance(option, dict) or not option.get("next"):
                raise ScriptError(f"{where}: option {i + 1} needs a label and a next node")
            parsed.append(
                Option(
                    _texts(option.get("label"), f"{where}, option {i + 1}"), str(option["next"])
                )
            )
        return Node(node_id, ask=_texts(raw["ask"], where), options=tuple(parsed))
    say = _texts(raw["say"], where)
    if raw.get("next") and raw.get("end"):
        raise ScriptError(f"{where}: a node either goes on (next) or ends (end), not both")
    if raw.get("end"):
        if raw["end"] not in OUTCOMES:
            raise ScriptError(f"{where}: end must be one of {', '.join(OUTCOMES)}")
        return Node(node_id, say=say, end=str(raw["end"]))
    if not raw.get("next"):
        raise ScriptError(f"{where}: a dead end: it neither goes on (next) nor ends (end)")
    return Node(node_id, say=say, next=str(raw["next"]))


def _check_graph(script: Script, name: str) -> None:
    for node in script.nodes.values():
        for target in node.successors():
            if target not in script.nodes:
                raise ScriptError(f"{name}: node {node.id!r}: goes to {target!r}, no such node")
    if script.start not in script.nodes:
        raise ScriptError(f"{name}: start {script.start!r} is not a node")
    reached = {script.start}
    frontier = [script.start]
    while frontier:
        for target in script.nodes[frontier.pop()].successors():
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    for node_id in script.nodes:
        if node_id not in reached:
            raise ScriptError(f"{name}: node {node_id!r} is never reached from the start")
    can_end = {n.id for n in script.nodes.values() if n.end}
    changed = True
    while changed:
        changed = False
        for node in script.nodes.values():
            if node.id not in can_end and any(t in can_end for t in node.successors()):
                can_end.add(node.id)
                changed = True
    for node_id in script.nodes:
        if node_id not in can_end:
            raise ScriptError(f"{name}: node {node_id!r} is in a loop with no way out to an end")


def load_script(path: Path) -> Script:
    name = path.name
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScriptError(f"{name}: cannot be read: {error}") from None
    if not isinstance(raw, dict):
        raise ScriptError(f"{name}: must be a mapping with id, title, start and nodes")
    for key in ("id", "title", "start", "nodes"):
        if not raw.get(key):
            raise ScriptError(f"{name}: {key} is missing")
    nodes_raw = raw["nodes"]
    if not isinstance(nodes_raw, dict):
        raise ScriptError(f"{name}: nodes must be a mapping of node names to nodes")
    for node_id in [raw["id"], *nodes_raw]:
        if not NAME.fullmatch(str(node_id)):
            raise ScriptError(
                f"{name}: {str(node_id)!r}: ids and node names are 1-40 of a-z, 0-9 and _"
            )
    nodes = {str(k): _node(str(k), v, f"{name}: node {k!r}") for k, v in nodes_raw.items()}
    intents = raw.get("intents") or []
    if not isinstance(intents, list):
        raise ScriptError(f"{name}: intents must be a list of NLU intent names")
    script = Script(
        id=str(raw["id"]),
        title=_texts(raw["title"], f"{name}: title"),
        intents=tuple(str(i) for i in intents),
        start=str(raw["start"]),
        nodes=nodes,
        path=path,
    )
    _check_graph(script, name)
    return script


def load_scripts(directory: Path = SCRIPTS_DIR) -> dict[str, Script]:
    """Every script of the folder, by id; a ScriptError for the first bad one."""
    scripts: dict[str, Script] = {}
    for path in sorted(directory.glob("*.yml")):
        script = load_script(path)
        if script.id in scripts:
            raise ScriptError(
                f"{path.name}: id {script.id!r} is also {scripts[script.id].path.name}'s"
            )
        scripts[script.id] = script
    if not scripts:
        raise ScriptError(f"{directory}: no call scripts (*.yml) found")
    return scripts


@cache
def scripts() -> dict[str, Script]:
    return load_scripts()


def suggested(intents: Iterable[str]) -> list[Script]:
    """Scripts for the NLU's ranked intents, best first, each once."""
    found: list[Script] = []
    for intent in intents:
        for script in scripts().values():
            if intent in script.intents and script not in found:
                found.append(script)
    return found


def topic_titles(lang: str) -> dict[str, str]:
    """hotline_calls.topic -> title, for calls walked through a script."""
    return {s.topic: s.title[lang] for s in scripts().values()}
