"""Corpus: routers branching on an answer, bounded retry-until-valid loops with
try/except, multi-round debates, tool-using agent loops."""

from __future__ import annotations

import json
import re

import pytest
from corpus_harness import Program, cases, check, leaf, serial


@leaf
def classify(text: str) -> str:
    return "math" if any(ch.isdigit() for ch in text) else "chat"


@leaf
def solve(problem: str) -> str:
    return f"solved({problem})"


@leaf
def chat(message: str) -> str:
    return f"chat({message})"


@leaf
def draft_json(task: str, attempt: int) -> str:
    # the first attempts are not JSON, as a real model's sometimes are
    if attempt < len(task) % 3 + 1:
        return f"Sure! Here is the JSON for {task}"
    return json.dumps({"task": task, "attempt": attempt, "ok": True})


@leaf
def flaky(task: str, attempt: int) -> str:
    if attempt < 1:
        raise RuntimeError(f"transient failure on {task}")
    return f"done({task})"


def router(message: str) -> str:
    label = classify(f"Classify: {message}")
    if label == "math":
        return solve(message)
    return chat(message)


HANDLERS = {"math": solve, "chat": chat}


def dict_router(message: str) -> dict:
    kinds = [classify(part) for part in message.split(";")]
    replies = [HANDLERS[k.strip()](part) for k, part in zip(kinds, message.split(";"), strict=True)]
    return {"kinds": kinds, "replies": replies}


def retry_until_json(task: str) -> dict:
    for attempt in range(4):
        reply = draft_json(task, attempt)
        try:
            return json.loads(reply)
        except Exception:
            continue
    return {"ok": False, "attempts": 4}


def retry_until_valid(task: str) -> str:
    last_error = None
    for attempt in range(4):
        try:
            data = json.loads(draft_json(f"valid {task}", attempt))
            if not data["ok"]:
                raise ValueError("not ok")
            return f"{data['task']} after {attempt + 1} tries"
        except (json.JSONDecodeError, ValueError) as exc:
            last_error = exc
    return f"gave up: {last_error}"


def retry_on_leaf_error(task: str) -> str:
    for attempt in range(3):
        try:
            result = flaky(task, attempt)
            break
        except Exception:
            result = "failed"
    return result


@leaf
def debater(name: str, prompt: str) -> str:
    return f"{name}: I hold {len(prompt) % 5}"


def debate(topic: str) -> str:
    agents = ["alice", "bob", "carol"]
    positions = {a: debater(a, f"Open the debate on {topic}") for a in agents}
    for rnd in range(2):
        transcript = "\n".join(f"{a}: {p}" for a, p in positions.items())
        positions = {
            a: debater(a, f"Round {rnd}. Others said:\n{transcript}\nYour reply?") for a in agents
        }
    return " | ".join(positions[a] for a in agents)


@leaf
def agent_llm(history: str) -> str:
    steps = history.count("Observation")
    if steps == 0:
        return "Thought: add numbers\nAction: calc[2 + 3]"
    if steps == 1:
        return "Thought: look it up\nAction: search[capital of " + history.split()[1] + "]"
    return "Final Answer: " + history.splitlines()[-1].removeprefix("Observation: ")


@leaf
def calc(expr: str) -> str:
    a, b = expr.split("+")
    return str(int(a) + int(b))


@leaf
def search(query: str) -> str:
    return f"result for {query}"


TOOLS = {"calc": calc, "search": search}


def react_agent(question: str) -> str:
    history = f"Question: {question}"
    for _ in range(5):
        step = agent_llm(history)
        if step.startswith("Final Answer:"):
            return step.removeprefix("Final Answer:").strip()
        tool, arg = re.search(r"Action: (\w+)\[(.*)\]", step).groups()
        observation = TOOLS[tool](arg)
        history += f"\n{step}\nObservation: {observation}"
    return "no answer"


MESSAGES = [("2+2 please",), ("hello there",), ("7 times 6; hi; 1+1",)]
TASKS = [("ab",), ("abcd",), ("abcde",)]
PROGRAMS = [
    Program("router", router, MESSAGES, width=1, depth=2),
    Program("dict_router", dict_router, MESSAGES, width=3, depth=2),
    Program("retry_until_json", retry_until_json, TASKS, width=1, depth=serial),
    Program("retry_until_valid", retry_until_valid, TASKS, width=1, depth=serial),
    Program("retry_on_leaf_error", retry_on_leaf_error, TASKS, width=1, depth=serial),
    Program("debate", debate, [("tabs vs spaces",), ("cats or dogs",)], width=3, depth=3),
    Program("react_agent", react_agent, [("Paris trip",), ("Rome visit",)], width=1, depth=serial),
]


@pytest.mark.parametrize("program, mode", cases(PROGRAMS))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
