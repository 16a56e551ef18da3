"""Corpus: tool-using agents and multi-step workflows, as people write them after reading
docs/models.md and tutorial 6.

ReAct loops that parse `Action: tool[arg]` with a regex and dispatch to a dict of tools,
bounded by a step budget (`for`, `while` with `break`/`else`, a generator of steps read by
a `for` loop, `itertools.islice` and `takewhile` over it, `match` over the parsed action,
`dataclasses.replace` on a frozen state each step, a scratchpad list, tool errors caught
and fed back as observations, `try`/`finally` that records where the loop stopped,
`track_usage()` around the loop, `execution_options(retries=...)` around a tool call);
plan-and-execute (a planner's JSON list of steps, independent or chained, or a small
graph of steps); parallel tool calls from one answer; a memory dict keyed by entity;
reflection (draft, critique, revise until OK); self-consistency votes with
`Counter.most_common`; a debate between two models; a supervisor routing subtasks to
worker operators by a label; map over documents then reduce; early exit when a verifier
approves.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import json
import re

import pytest
from corpus_harness import Program, cases, check, leaf, made, model, serial

import ember_xcs as xcs
from ember_xcs import models

# --- the tools -----------------------------------------------------------------------------


@leaf
def search(query: str) -> str:
    return f"{query.strip().title()} is {len(query) % 7 + 1} km long"


@leaf
def calc(expression: str) -> str:
    if not re.fullmatch(r"[\d\s+*-]+", expression):
        raise ValueError(f"cannot evaluate {expression!r}")
    total = 0
    for term in expression.split("+"):
        factors = [int(f) for f in term.split("*")]
        total += functools.reduce(lambda a, b: a * b, factors, 1)
    return str(total)


@leaf
def lookup(entity: str) -> str:
    if entity.lower() == "nobody":
        raise KeyError(entity)
    return f"{entity}: born {1900 + len(entity) * 7}"


@leaf
def fetch(url: str) -> str:
    if url.startswith("ftp"):
        raise TimeoutError(f"no answer from {url}")
    return f"<html>{url.rsplit('/', 1)[-1]}</html>"


@leaf
def summarize(document: str) -> str:
    return " ".join(document.split()[:3])


@leaf
def combine(left: str, right: str) -> str:
    return f"({left} + {right})"


@leaf
def verify(question: str, candidate: str) -> str:
    return "APPROVED" if len(candidate) % 3 == len(question) % 3 else "REJECTED: try again"


TOOLS = {"search": search, "calc": calc, "lookup": lookup, "fetch": fetch}


# --- the models --------------------------------------------------------------------------------


def _react_policy(prompt: str, sample: int) -> str:
    """An agent model: search first, then compute if the question has digits, then answer;
    a question about a loop never answers, one with `bad` asks for a broken calculation."""
    question = prompt.split("Question: ", 1)[1].splitlines()[0]
    seen = prompt.count("Observation:")
    digits = re.findall(r"\d+", question)
    if "loop" in question:
        return f"Thought: look again\nAction: search[{question.split()[-1]} {seen}]"
    if seen == 0:
        return f"Thought: I should search.\nAction: search[{question.split()[-1]}]"
    if seen == 1 and "bad" in question:
        return "Thought: compute it\nAction: calc[2 + x]"
    if seen == 1 and digits:
        return f"Thought: compute it\nAction: calc[{' + '.join(digits)}]"
    if seen == 1 and "who" in question.lower():
        return f"Thought: who is it\nAction: lookup[{question.split()[1]}]"
    last = prompt.rstrip().splitlines()[-1].removeprefix("Observation:").strip()
    return f"Thought: I know now.\nFinal Answer: {last[:30]}"


AGENT = model("agent", responses=_react_policy)


def _planner(prompt: str, sample: int) -> str:
    goal = prompt.rsplit("Goal:", 1)[1].strip()
    words = [w for w in goal.split() if len(w) > 2][:4]
    if "chain" in prompt:
        return json.dumps([f"step {i}: refine {w}" for i, w in enumerate(words)])
    if "graph" in prompt:
        return json.dumps(
            [
                {"id": "a", "task": f"research {words[0]}", "needs": []},
                {"id": "b", "task": f"research {words[-1]}", "needs": []},
                {"id": "c", "task": "compare", "needs": ["a", "b"]},
                {"id": "d", "task": "conclude", "needs": ["c"]},
            ]
        )
    return json.dumps([f"research {w}" for w in words])


PLANNER = model("planner", responses=_planner)
WORKER = model("worker", responses=lambda p, s: f"done: {p[:24]} ({len(p) % 10})")
WRITER = model("writer", responses=lambda p, s: f"Report[{len(p)}]: {p.splitlines()[0][:20]}")


def _multi_tool(prompt: str, sample: int) -> str:
    topic = prompt.rsplit("Task:", 1)[1].strip().split()
    lines = [f"Action: search[{topic[0]}]", f"Action: lookup[{topic[-1]}]"]
    if len(topic) > 2:
        lines.append(f"Action: calc[{len(topic)} * 3 + 1]")
    if "broken" in topic:
        lines.append("Action: calc[one + two]")
    return "I will call several tools.\n" + "\n".join(lines)


TOOL_CALLER = model("caller", responses=_multi_tool)


def _json_tool_calls(prompt: str, sample: int) -> str:
    words = prompt.rsplit(":", 1)[1].split()
    calls = [{"name": "search", "args": {"query": w}} for w in words[:3]]
    calls.append({"name": "calc", "args": {"expression": f"{len(words)} + 1"}})
    return json.dumps({"tool_calls": calls})


JSON_CALLER = model("json_caller", responses=_json_tool_calls)


def _critic(prompt: str, sample: int) -> str:
    revision = int(re.search(r"rev (\d+)", prompt).group(1))
    return "OK" if revision > len(set(prompt)) % 4 else f"Too vague (issue {revision})"


def _drafter(prompt: str, sample: int) -> str:
    previous = re.search(r"rev (\d+)", prompt)
    return f"rev {int(previous.group(1)) + 1 if previous else 1}: {prompt[-20:]}"


DRAFTER = model("drafter", responses=_drafter)
CRITIC = model("critic", responses=_critic)
VOTER = model("voter", responses=lambda p, s: f"The answer is {(len(p) + s * s) % 4}.")
PRO = model("pro", responses=lambda p, s: f"PRO[{len(p) % 13}] {p[-15:]}")
CON = model("con", responses=lambda p, s: f"CON[{len(p) % 11}] {p[-15:]}")
MODERATOR = model("moderator", responses=lambda p, s: "pro" if len(p) % 2 else "con")
ROUTER = model(
    "router",
    responses=lambda p, s: (
        " math\n" if any(c.isdigit() for c in p) else ("code" if "def" in p else "writing")
    ),
)
EXTRACTOR = model(
    "extractor",
    responses=lambda p, s: ", ".join(w.strip("?.,") for w in p.split() if w[:1].isupper()),
)
SOLVER = model("solver", responses=lambda p, s: f"x = {len(p) % 5 + s}")

WORKERS = {
    "math": models.LLMOperator(model("mathematician"), "Solve: {task}"),
    "code": models.LLMOperator(model("coder"), "Write code: {task}"),
    "writing": models.LLMOperator(model("author"), "Write prose: {task}"),
}


def _parse_action(reply: str) -> tuple[str, str] | None:
    match = re.search(r"Action:\s*(\w+)\[(.*?)\]", reply)
    return match.groups() if match else None


# --- ReAct loops ---------------------------------------------------------------------------------


def react_regex(question: str) -> str:
    prompt = f"Question: {question}\n"
    for _ in range(5):
        reply = AGENT.complete(prompt).text
        if "Final Answer:" in reply:
            return reply.split("Final Answer:")[1].strip()
        action = re.search(r"Action: (\w+)\[(.*)\]", reply)
        if action is None:
            return "could not parse"
        tool, arg = action.group(1), action.group(2)
        observation = TOOLS[tool](arg)
        prompt += f"{reply}\nObservation: {observation}\n"
    return "gave up"


def react_tool_errors(question: str) -> str:
    prompt = f"Question: {question}\n"
    for _ in range(4):
        reply = AGENT.complete(prompt).text
        if reply.find("Final Answer:") >= 0:
            return reply.partition("Final Answer:")[2].strip()
        tool, arg = _parse_action(reply)
        try:
            observation = TOOLS[tool](arg)
        except Exception as error:  # noqa: BLE001 - fed back to the model
            observation = f"Error: {type(error).__name__}: {error}"
        prompt += f"{reply}\nObservation: {observation}\n"
    return "no answer"


def react_match(question: str) -> str:
    transcript = [f"Question: {question}"]
    for _ in range(5):
        reply = AGENT.complete("\n".join(transcript) + "\n").text
        transcript.append(reply)
        match _parse_action(reply), reply.split("Final Answer:"):
            case (("search" | "lookup") as tool, arg), _:
                transcript.append(f"Observation: {TOOLS[tool](arg)}")
            case ("calc", expression), _:
                try:
                    transcript.append(f"Observation: {calc(expression)}")
                except ValueError as error:
                    transcript.append(f"Observation: invalid ({error})")
            case None, [_, answer]:
                return answer.strip()
            case _:
                transcript.append("Observation: unknown action")
    return transcript[-1]


def react_while_else(question: str) -> tuple:
    prompt, steps = f"Question: {question}\n", 0
    while steps < 4:
        steps += 1
        reply = AGENT.complete(prompt).text
        if "Final Answer" in reply:
            answer = reply.splitlines()[-1]
            break
        tool, arg = _parse_action(reply)
        prompt += f"{reply}\nObservation: {TOOLS.get(tool, search)(arg)}\n"
    else:
        answer = "ran out of steps"
    return answer, steps


@dataclasses.dataclass(frozen=True)
class AgentState:
    question: str
    history: tuple[str, ...] = ()
    steps: int = 0
    answer: str | None = None

    def prompt(self) -> str:
        return "\n".join([f"Question: {self.question}", *self.history]) + "\n"


def react_dataclass_state(question: str) -> AgentState:
    state = AgentState(question)
    while state.answer is None and state.steps < 4:
        reply = AGENT.complete(state.prompt()).text
        state = dataclasses.replace(state, steps=state.steps + 1, history=(*state.history, reply))
        if "Final Answer:" in reply:
            state = dataclasses.replace(state, answer=reply.split(":")[-1].strip())
            continue
        tool, arg = _parse_action(reply)
        observation = TOOLS[tool](arg)
        state = dataclasses.replace(state, history=(*state.history, f"Observation: {observation}"))
    return state


def _agent_steps(question: str):
    prompt = f"Question: {question}\n"
    while True:
        reply = AGENT.complete(prompt).text
        parsed = _parse_action(reply)
        if parsed is None:
            yield "final", reply.split("Final Answer:")[-1].strip()
            return
        tool, arg = parsed
        observation = TOOLS[tool](arg)
        yield tool, observation
        prompt += f"{reply}\nObservation: {observation}\n"


def react_generator(question: str) -> list:
    trace = []
    for kind, value in _agent_steps(question):
        trace.append((kind, value))
        if kind == "final" or len(trace) >= 4:
            break
    return trace


def react_islice(question: str) -> list:
    return [f"{kind}={value}" for kind, value in itertools.islice(_agent_steps(question), 3)]


def react_takewhile(question: str) -> dict:
    steps = itertools.takewhile(lambda step: step[0] != "final", _agent_steps(question))
    tools_used = []
    for tool, observation in itertools.islice(steps, 4):
        tools_used.append(f"{tool}: {observation[:12]}")
    return {"tools": tools_used, "count": len(tools_used)}


def react_scratchpad(question: str) -> str:
    scratchpad: list[str] = []
    for _ in range(4):
        context = "\n".join(scratchpad)
        reply = AGENT.complete(f"Question: {question}\n{context}").text
        scratchpad.append(reply)
        if "Final Answer:" in reply:
            break
        name, arg = _parse_action(reply)
        scratchpad.append(f"Observation: {TOOLS[name](arg)}")
    return f"{len(scratchpad)} entries, last: {scratchpad[-1]}"


def react_try_finally(question: str) -> dict:
    record = {"steps": 0, "status": "running"}
    prompt = f"Question: {question}\n"
    try:
        for _ in range(4):
            reply = AGENT.complete(prompt).text
            record["steps"] += 1
            if "Final Answer:" in reply:
                record["answer"] = reply.split("Final Answer:")[1].strip()
                return record
            tool, arg = _parse_action(reply)
            prompt += f"{reply}\nObservation: {TOOLS[tool](arg)}\n"
    finally:
        record["status"] = "done" if "answer" in record else "stopped"
    return record


def react_track_usage(question: str) -> tuple:
    with models.track_usage() as usage:
        prompt = f"Question: {question}\n"
        answer = None
        for _ in range(4):
            reply = AGENT.complete(prompt).text
            if "Final Answer:" in reply:
                answer = reply.split("Final Answer:")[1].strip()
                break
            tool, arg = _parse_action(reply)
            prompt += f"{reply}\nObservation: {TOOLS[tool](arg)}\n"
    return answer, usage.calls, usage.prompt_tokens, usage.completion_tokens


def react_retrying_tool(question: str) -> list[str]:
    observations = []
    prompt = f"Question: {question}\n"
    for _ in range(4):
        reply = AGENT.complete(prompt).text
        if "Final Answer:" in reply:
            break
        tool, arg = _parse_action(reply)
        # transient failures are retried; a bad argument is not (ValueError)
        with xcs.execution_options(retries=2, retry_backoff=0.0, retry_on=(TimeoutError,)):
            try:
                observation = TOOLS[tool](arg)
            except ValueError as error:
                observation = f"bad input: {error}"
        observations.append(observation)
        prompt += f"{reply}\nObservation: {observation}\n"
    return observations


# --- plan and execute ------------------------------------------------------------------------------


def plan_execute(goal: str) -> str:
    plan = json.loads(PLANNER.complete(f"Make a plan. Goal: {goal}").text)
    results = []
    for step in plan:
        results.append(WORKER.complete(f"Do this: {step}").text)
    summary = "\n".join(f"{i + 1}. {r}" for i, r in enumerate(results))
    return WRITER.complete(f"Write up:\n{summary}").text


def plan_execute_chained(goal: str) -> list[str]:
    steps = json.loads(PLANNER.complete(f"Plan a chain. Goal: {goal}").text)
    context = goal
    outputs = []
    for step in steps:
        context = WORKER.complete(f"{step}\nPrevious result: {context}").text
        outputs.append(context)
    return outputs


def plan_execute_graph(goal: str) -> dict:
    steps = json.loads(PLANNER.complete(f"Plan a graph. Goal: {goal}").text)
    results: dict[str, str] = {}
    for step in steps:
        inputs = "; ".join(results[need] for need in step["needs"])
        results[step["id"]] = WORKER.complete(f"{step['task']} given [{inputs}]").text
    return results


def plan_execute_tools(goal: str) -> list[str]:
    plan = json.loads(PLANNER.complete(f"Make a plan. Goal: {goal}").text)
    return [search(step.removeprefix("research ")) for step in plan]


# --- parallel tool calls ----------------------------------------------------------------------------


def parallel_tool_calls(task: str) -> str:
    reply = TOOL_CALLER.complete(f"Task: {task}").text
    calls = re.findall(r"Action: (\w+)\[(.*?)\]", reply)
    observations = [TOOLS[name](arg) for name, arg in calls]
    joined = "\n".join(f"{name}: {obs}" for (name, _), obs in zip(calls, observations, strict=True))
    return WRITER.complete(f"Answer using:\n{joined}").text


def parallel_tool_calls_guarded(task: str) -> list[str]:
    reply = TOOL_CALLER.complete(f"Task: {task}").text
    observations = []
    for name, arg in re.findall(r"Action: (\w+)\[(.*?)\]", reply):
        try:
            observations.append(TOOLS[name](arg))
        except Exception as error:  # noqa: BLE001 - reported back, as agents do
            observations.append(f"{name} failed: {error}")
    return observations


def json_tool_calls(task: str) -> dict:
    reply = json.loads(JSON_CALLER.complete(f"Use tools for: {task}").text)
    results = {}
    for i, call in enumerate(reply["tool_calls"]):
        results[f"{call['name']}#{i}"] = TOOLS[call["name"]](**call["args"])
    return results


# --- memory, reflection, voting, debate -------------------------------------------------------------


def entity_memory(question: str) -> str:
    entities = [e.strip() for e in EXTRACTOR.complete(question).text.split(",") if e.strip()]
    memory: dict[str, str] = {}
    for entity in entities:
        if entity not in memory:
            memory[entity] = lookup(entity)
    facts = "\n".join(f"- {name}: {fact}" for name, fact in memory.items())
    return WRITER.complete(f"{question}\nKnown facts:\n{facts}").text


def reflection(topic: str) -> tuple:
    draft = DRAFTER.complete(f"Write a paragraph about {topic}").text
    rounds = 0
    for rounds in range(1, 4):  # noqa: B007 - the count is returned
        critique = CRITIC.complete(f"Critique this: {draft}").text
        if critique.strip() == "OK":
            break
        draft = DRAFTER.complete(f"Revise ({critique}): {draft}").text
    return draft, rounds


def self_consistency(question: str) -> tuple:
    answers = [VOTER.complete(f"Q: {question}\nA:", sample=i).text for i in range(5)]
    (best, count), *_ = collections.Counter(answers).most_common()
    return best, count


def self_consistency_parsed(question: str) -> str:
    votes = collections.Counter(
        re.search(r"answer is (\d)", VOTER.complete(question, sample=i).text).group(1)
        for i in range(5)
    )
    return votes.most_common(1)[0][0]


def debate(topic: str) -> dict:
    pro = PRO.complete(f"Argue for: {topic}").text
    con = CON.complete(f"Argue against: {topic}").text
    for rnd in range(2):
        new_pro = PRO.complete(f"Round {rnd}. Your opponent said: {con}\nRebut.").text
        new_con = CON.complete(f"Round {rnd}. Your opponent said: {pro}\nRebut.").text
        pro, con = new_pro, new_con
    winner = MODERATOR.complete(f"Who won?\nPRO: {pro}\nCON: {con}").text
    return {"pro": pro, "con": con, "winner": winner}


def debate_transcript(topic: str) -> list[str]:
    transcript = [f"Topic: {topic}"]
    for _ in range(2):
        for speaker in (PRO, CON):
            turn = speaker.complete("\n".join(transcript)).text
            transcript.append(turn)
    return transcript


# --- supervisors and map-reduce ---------------------------------------------------------------------


def supervisor(request: str) -> list[str]:
    results = []
    for subtask in request.split(";"):
        label = ROUTER.complete(f"Which worker for: {subtask}").text.strip()
        results.append(WORKERS[label](task=subtask.strip()))
    return results


def supervisor_labels_first(request: str) -> dict:
    subtasks = [s.strip() for s in request.split(";")]
    labels = [ROUTER.complete(f"Which worker for: {s}").text for s in subtasks]
    out = collections.defaultdict(list)
    for subtask, label in zip(subtasks, labels, strict=True):
        worker = WORKERS.get(label.strip())
        out[label.strip()].append(worker(task=subtask) if worker else "unrouted")
    return dict(out)


DOCUMENTS = {
    "short": ["alpha beta gamma delta", "one two three four five"],
    "three": ["the cat sat on the mat", "dogs bark at night often", "rain falls in spain"],
    "four": ["a b c d", "e f g h", "i j k l", "m n o p"],
}


def map_reduce(corpus: str) -> str:
    docs = DOCUMENTS[corpus]
    summaries = [summarize(doc) for doc in docs]
    return WRITER.complete("Combine these summaries:\n" + "\n".join(summaries)).text


def map_fold(corpus: str) -> str:
    summaries = list(map(summarize, DOCUMENTS[corpus]))
    return functools.reduce(combine, summaries)


# --- verifiers --------------------------------------------------------------------------------------


def verify_until_approved(question: str) -> str | None:
    for attempt in range(4):
        candidate = SOLVER.complete(f"{question} (attempt {attempt})", sample=attempt).text
        if verify(question, candidate) == "APPROVED":
            return candidate
    return None


def candidates_then_verify(question: str) -> str:
    candidates = [SOLVER.complete(question, sample=i).text for i in range(4)]
    for candidate in candidates:
        verdict = verify(question, candidate)
        if verdict.startswith("APPROVED"):
            return candidate
    return "none approved"


# --- more of the same, written other ways -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlanState:
    goal: str
    done: tuple[str, ...] = ()
    results: tuple[str, ...] = ()


def plan_execute_state(goal: str) -> PlanState:
    state = PlanState(goal)
    for step in json.loads(PLANNER.complete(f"Make a plan. Goal: {goal}").text):
        state = dataclasses.replace(
            state,
            done=(*state.done, step),
            results=state.results + (WORKER.complete(f"Do this: {step}").text,),
        )
    return state


def _run_plan(steps):
    for step in steps:
        yield search(step.removeprefix("research "))


def plan_execute_generator(goal: str) -> list[str]:
    steps = json.loads(PLANNER.complete(f"Make a plan. Goal: {goal}").text)
    first_three = list(itertools.islice(_run_plan(steps), 3))
    return [*first_three, *(f"skipped {s}" for s in steps[3:])]


class Toolbox:
    """Tools as methods, found by name the way an agent framework looks them up."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.used: list[str] = []

    def search(self, query: str) -> str:
        self.used.append("search")
        return search(f"{self.prefix} {query}")

    def calc(self, expression: str) -> str:
        self.used.append("calc")
        return calc(expression)

    def lookup(self, entity: str) -> str:
        self.used.append("lookup")
        return lookup(entity)


def react_toolbox_methods(question: str) -> tuple:
    toolbox = Toolbox("wiki")
    prompt = f"Question: {question}\n"
    answer = None
    for _ in range(4):
        reply = AGENT.complete(prompt).text
        if (parsed := _parse_action(reply)) is None:
            answer = reply.split("Final Answer:")[-1].strip()
            break
        name, arg = parsed
        try:
            observation = getattr(toolbox, name)(arg)
        except (ValueError, KeyError) as error:
            observation = f"{name} failed: {error!r}"
        else:
            observation = observation.lower()
        prompt += f"{reply}\nObservation: {observation}\n"
    return answer, toolbox.used


PARTIAL_WORKERS = {
    "math": functools.partial(WORKERS["math"], task="2+2"),
    "search": functools.partial(search, "default query"),
}


def partial_tools(task: str) -> list[str]:
    names = ["math", "search", *(["math"] if "sum" in task else [])]
    return [PARTIAL_WORKERS[n]() for n in names] + [search(task)]


def first_approved(question: str) -> str | None:
    candidates = [SOLVER.complete(question, sample=i).text for i in range(4)]
    return next((c for c in candidates if verify(question, c) == "APPROVED"), None)


def parallel_tools_usage(task: str) -> tuple:
    reply = TOOL_CALLER.complete(f"Task: {task}").text
    with models.track_usage() as usage:
        notes = [WORKER.complete(f"note on {arg}").text for _, arg in _all_actions(reply)]
    return notes, usage.calls


def _all_actions(reply: str) -> list[tuple[str, str]]:
    return re.findall(r"Action: (\w+)\[(.*?)\]", reply)


def parallel_tools_retries(task: str) -> dict:
    reply = TOOL_CALLER.complete(f"Task: {task}").text
    urls = [f"https://example.org/{arg.replace(' ', '_')}" for _, arg in _all_actions(reply)]
    with xcs.execution_options(retries=2, retry_backoff=0.0, retry_on=(TimeoutError,)):
        pages = {url: fetch(url) for url in urls}
    return {url: page.removeprefix("<html>") for url, page in pages.items()}


def reflection_while_true(topic: str) -> list[str]:
    history = [DRAFTER.complete(f"Write a paragraph about {topic}").text]
    rounds = 0
    while True:
        rounds += 1
        critique = CRITIC.complete(f"Critique this: {history[-1]}").text
        if critique == "OK" or rounds == 3:
            break
        history.append(DRAFTER.complete(f"Revise ({critique}): {history[-1]}").text)
    return history


def memory_setdefault(question: str) -> dict:
    memory: dict[str, list[str]] = {}
    for entity in EXTRACTOR.complete(question).text.split(", "):
        if entity:
            memory.setdefault(entity, []).append(search(entity))
    return memory


def map_reduce_by_key(corpus: str) -> dict:
    docs = DOCUMENTS[corpus]
    summaries = {f"doc{i}": summarize(doc) for i, doc in enumerate(docs)}
    labels = {key: ROUTER.complete(text).text for key, text in summaries.items()}
    groups = collections.defaultdict(list)
    for key, label in labels.items():
        groups[label.strip()].append(key)
    return dict(groups)


def _logged_steps(question: str, log: list[str]):
    prompt = f"Question: {question}\n"
    try:
        for step in itertools.count():
            reply = AGENT.complete(prompt).text
            yield reply
            if (parsed := _parse_action(reply)) is None:
                return
            try:
                observation = TOOLS[parsed[0]](parsed[1])
            except ValueError as error:
                observation = f"error: {error}"
            else:
                log.append(f"step {step}: {parsed[0]} ok")
            prompt += f"{reply}\nObservation: {observation}\n"
    finally:
        log.append("closed")


def generator_cleanup(question: str) -> tuple:
    log: list[str] = []
    replies = []
    for reply in _logged_steps(question, log):
        replies.append(reply.splitlines()[-1])
        if len(replies) == 3:
            break
    return replies, log


class Specialist(xcs.Operator):
    """A worker operator holding its model call (a composite): draft, then polish."""

    def __init__(self, style: str):
        self.style = style
        self.draft = models.LLMOperator(model(f"{style}_drafter"), "Draft ({style}): {task}")
        self.polish = models.LLMOperator(model(f"{style}_polisher"), "Polish: {text}")

    def forward(self, task: str) -> str:
        return self.polish(text=self.draft(style=self.style, task=task))


SPECIALISTS = {
    "math": Specialist("math"),
    "code": Specialist("code"),
    "writing": Specialist("prose"),
}


def supervisor_composites(request: str) -> dict:
    subtasks = [s.strip() for s in request.split(";")]
    labels = [ROUTER.complete(f"Route: {s}").text for s in subtasks]
    return {s: SPECIALISTS[label.strip()](s) for s, label in zip(subtasks, labels, strict=True)}


def guarded_parallel_fetch(task: str) -> list[str]:
    reply = TOOL_CALLER.complete(f"Task: {task}").text
    urls = [
        f"ftp://mirror/{a}" if "broken" in a else f"https://x/{a}" for _, a in _all_actions(reply)
    ]
    pages = [fetch(url) for url in urls]
    out = []
    for url, page in zip(urls, pages, strict=True):
        try:
            out.append(page.upper())
        except TimeoutError:
            out.append(f"timeout on {url}")
    return out


QUESTIONS = [
    ("What is the length of the Danube?",),
    ("Add 12 and 30 for me",),
    ("Who is Ada Lovelace?",),
    ("Compute a bad sum",),
    ("Stuck in a loop forever",),
]
GOALS = [("write a report on river pollution",), ("plan a trip to Kyoto in spring",)]
TASKS = [("rivers of Europe",), ("Ada and Babbage",), ("broken sums are here",)]
TOPICS = [("tabs versus spaces",), ("cats",), ("remote work is better",)]
REQUESTS = [("add 2 and 3; def a parser; a poem about tea",), ("write an essay",), ("1+1; 2+2",)]
CORPORA = [("short",), ("three",), ("four",)]
WHO = [
    ("Did Ada meet Charles Babbage in London?",),
    ("Ada asked Ada about Paris",),
    ("no names here",),
    ("Nobody knows Ada",),
]


PROGRAMS = [
    Program("react_regex", react_regex, QUESTIONS, width=1, depth=serial),
    Program("react_tool_errors", react_tool_errors, QUESTIONS, width=1, depth=serial),
    Program("react_match", react_match, QUESTIONS, width=1, depth=serial),
    Program("react_while_else", react_while_else, QUESTIONS, width=1, depth=serial),
    Program("react_dataclass_state", react_dataclass_state, QUESTIONS, width=1, depth=serial),
    Program("react_generator", react_generator, QUESTIONS, width=1, depth=serial),
    Program("react_islice", react_islice, QUESTIONS, width=1, depth=serial),
    Program("react_takewhile", react_takewhile, QUESTIONS, width=1, depth=serial),
    Program("react_scratchpad", react_scratchpad, QUESTIONS, width=1, depth=serial),
    Program("react_try_finally", react_try_finally, QUESTIONS, width=1, depth=serial),
    Program("react_track_usage", react_track_usage, QUESTIONS, width=1, depth=serial),
    Program("react_retrying_tool", react_retrying_tool, QUESTIONS, width=1, depth=serial),
    # the plan's steps are independent: all at once, then the write-up
    Program("plan_execute", plan_execute, GOALS, width=4, depth=3),
    # each step reads the one before
    Program("plan_execute_chained", plan_execute_chained, GOALS, width=1, depth=serial),
    # a and b at once, then c, then d
    Program("plan_execute_graph", plan_execute_graph, GOALS, width=2, depth=4),
    Program("plan_execute_tools", plan_execute_tools, GOALS, width=4, depth=2),
    # the tools one answer asked for run at once, then the answer
    Program("parallel_tool_calls", parallel_tool_calls, TASKS, width=4, depth=3),
    Program("parallel_tool_calls_guarded", parallel_tool_calls_guarded, TASKS, width=4, depth=2),
    Program("json_tool_calls", json_tool_calls, TASKS, width=4, depth=2),
    # one lookup per distinct entity, at once
    Program("entity_memory", entity_memory, WHO, width=5, depth=3),
    Program("reflection", reflection, TOPICS, width=1, depth=serial),
    Program("self_consistency", self_consistency, QUESTIONS[:3], width=5, depth=1),
    Program("self_consistency_parsed", self_consistency_parsed, QUESTIONS[:3], width=5, depth=1),
    # both sides answer each round at once; the moderator reads the last round
    Program("debate", debate, TOPICS, width=2, depth=4),
    Program("debate_transcript", debate_transcript, TOPICS, width=1, depth=serial),
    # every subtask's label at once, each worker after its own label
    Program("supervisor", supervisor, REQUESTS, width=3, depth=2),
    Program("supervisor_labels_first", supervisor_labels_first, REQUESTS, width=3, depth=2),
    Program("map_reduce", map_reduce, CORPORA, width=4, depth=2),
    # the summaries at once, then the pairwise folds one after another
    Program("map_fold", map_fold, CORPORA, width=4, depth=lambda c: made(c, "combine") + 1),
    Program("plan_execute_state", plan_execute_state, GOALS, width=4, depth=2),
    Program("plan_execute_generator", plan_execute_generator, GOALS, width=3, depth=2),
    Program("react_toolbox_methods", react_toolbox_methods, QUESTIONS, width=1, depth=serial),
    Program("partial_tools", partial_tools, TASKS, width=4, depth=1),
    # the candidates at once, then each verdict before the next
    Program(
        "first_approved", first_approved, QUESTIONS, width=4, depth=lambda c: made(c, "verify") + 1
    ),
    Program("parallel_tools_usage", parallel_tools_usage, TASKS, width=4, depth=2),
    Program("parallel_tools_retries", parallel_tools_retries, TASKS, width=4, depth=2),
    Program("reflection_while_true", reflection_while_true, TOPICS, width=1, depth=serial),
    Program("memory_setdefault", memory_setdefault, WHO, width=5, depth=2),
    # the summaries at once, then each summary's label as it arrives
    Program("map_reduce_by_key", map_reduce_by_key, CORPORA, width=4, depth=2),
    Program("generator_cleanup", generator_cleanup, QUESTIONS, width=1, depth=serial),
    # every label at once, then each specialist's draft and polish
    Program("supervisor_composites", supervisor_composites, REQUESTS, width=3, depth=3),
    # the fetches at once; a failed one is caught where its page is used
    Program("guarded_parallel_fetch", guarded_parallel_fetch, TASKS, width=4, depth=2),
    Program("verify_until_approved", verify_until_approved, QUESTIONS, width=1, depth=serial),
    # the candidates at once, then each verdict before the next
    Program(
        "candidates_then_verify",
        candidates_then_verify,
        QUESTIONS,
        width=4,
        depth=lambda c: made(c, "verify") + 1,
    ),
]


_USED = "(a result used before the next call is made: docs/sharp-bits.md)"

# (program, mode): why the overlap falls short of the natural width
KNOWN_SHORT = {
    (name, mode): why
    for name, why in {
        "parallel_tool_calls_guarded": "each tool call sits in a `try` body, where a call "
        "waits for its result (docs/sharp-bits.md): the tools run one at a time",
        "self_consistency_parsed": "`re.search(..., VOTER.complete(...).text)` in the "
        "generator's item uses each sample before the next is asked for (the item must not "
        f"use the result) {_USED}",
        "supervisor": "`ROUTER.complete(...).text.strip()` uses each label before the next "
        f"subtask's label is asked for {_USED}",
    }.items()
    for mode in ("auto", "trace", "dynamic")
}


# (program, mode): a wrong answer found by this corpus and not fixed yet (no documented
# rule explains it: the plain function raises at the call, before the `try` is entered)
@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
