"""LLMOperator and the ensemble blocks, called directly and as graph nodes."""

from __future__ import annotations

import inspect

import pytest

import ember_xcs as xcs
from ember_xcs.models import (
    JudgeSynthesis,
    LLMOperator,
    ModelConfigError,
    MostCommon,
    PromptTemplateError,
    Sequential,
    SimulatedModel,
    UniformEnsemble,
    Verdict,
    Verifier,
    nested_ensemble,
)
from ember_xcs.operators import Operator, operator_signature


def _echo(prompt: str, sample: int) -> str:
    return f"{sample}|{prompt}"


def _leaves(operator: Operator) -> list[Operator]:
    if not operator.is_composite:
        return [operator]
    return [leaf for _, sub in operator.sub_operators() for leaf in _leaves(sub)]


# --- LLMOperator -------------------------------------------------------------------------


def test_llm_operator_parameters_are_the_template_placeholders():
    ask = LLMOperator(SimulatedModel(), "Translate {text} into {language}. Ref {text.upper}")
    assert list(operator_signature(ask).parameters) == ["text", "language"]
    assert not ask.is_composite


def test_llm_operator_renders_template_positionally_or_by_name():
    ask = LLMOperator(SimulatedModel(responses=_echo), "{a} + {b}", sample=4)
    assert ask(1, 2) == "4|1 + 2"
    assert ask(b=2, a=1) == "4|1 + 2"
    assert ask(1, b=2) == "4|1 + 2"


def test_llm_operator_missing_placeholder_error_names_them():
    model = SimulatedModel()
    ask = LLMOperator(model, "{question} in {language} for {audience}")
    with pytest.raises(PromptTemplateError, match="language, audience") as info:
        ask(question="hi")
    assert isinstance(info.value, xcs.ModelError) and isinstance(info.value, TypeError)
    assert model.calls == 0  # nothing was sent


def test_llm_operator_rejects_unknown_and_duplicate_arguments():
    ask = LLMOperator(SimulatedModel(), "{question}")
    with pytest.raises(PromptTemplateError, match="qestion"):
        ask(qestion="typo")
    with pytest.raises(PromptTemplateError, match="twice"):
        ask("a", question="b")
    with pytest.raises(PromptTemplateError, match="takes 1 argument"):
        ask("a", "b")


def test_llm_operator_rejects_positional_placeholders_and_non_models():
    with pytest.raises(ModelConfigError, match="named placeholders"):
        LLMOperator(SimulatedModel(), "{} and {0}")
    with pytest.raises(ModelConfigError, match="needs a Model"):
        LLMOperator("gpt-4", "{question}")


def test_llm_operator_applies_parse_and_passes_params():
    seen = {}

    class Recorder:
        name = "recorder"

        def complete(self, prompt, *, sample=0, **params):
            seen.update(params, prompt=prompt, sample=sample)
            from ember_xcs.models import ModelResponse

            return ModelResponse(text=" 42 ", model=self.name)

    ask = LLMOperator(Recorder(), "{q}", parse=lambda t: int(t), params={"temperature": 0.3})
    assert ask("what?") == 42
    assert seen == {"prompt": "what?", "sample": 0, "temperature": 0.3}


def test_llm_operators_run_as_graph_nodes_with_inputs_by_name():
    model = SimulatedModel(responses=_echo, latency=0.02)
    graph = xcs.Graph()
    graph.add_node(LLMOperator(model, "Q: {question}", sample=0), node_id="a")
    graph.add_node(LLMOperator(model, "Q: {question}", sample=1), node_id="b")
    graph.add_node(JudgeSynthesis(model, "{question} {responses}"), node_id="judge")
    graph.add_edge("a", "judge", field_mappings={"*": "question"})
    inputs = {"a": {"question": "x"}, "b": {"question": "y"}, "judge": {"responses": ["r"]}}
    result = xcs.execute_graph(graph, inputs)
    assert result["b"] == "1|Q: y"
    assert result["judge"] == "0|0|Q: x 1. r"


def test_judge_rejects_a_string_where_a_list_of_responses_belongs():
    with pytest.raises(PromptTemplateError, match="list of candidate answers"):
        JudgeSynthesis(SimulatedModel())("just one string", "q?")


# --- ensembles ---------------------------------------------------------------------------


def test_uniform_ensemble_is_composite_with_one_unit_per_sample():
    model = SimulatedModel(responses=_echo)
    ensemble = UniformEnsemble(4, model, "Q: {question}", first_sample=10)
    assert ensemble.is_composite and len(ensemble.sub_operators()) == 4
    assert ensemble("x") == [f"{s}|Q: x" for s in range(10, 14)]
    assert list(operator_signature(ensemble).parameters) == ["question"]
    with pytest.raises(ModelConfigError):
        UniformEnsemble(0, model)


def test_most_common_picks_the_majority_and_breaks_ties_by_first_seen():
    vote = MostCommon()
    assert vote(["b", "a", "a", "b", "c", "a"]) == "a"
    assert vote(["x", "y"]) == "x"
    assert (
        MostCommon(normalize=lambda s: s.strip().lower())([" Paris", "lyon", "PARIS "]) == " Paris"
    )
    with pytest.raises(ModelConfigError, match="no responses"):
        vote([])


def test_judge_formats_numbered_candidates_inside_the_leaf():
    model = SimulatedModel(
        responses=lambda prompt, sample: f"thinking...\nFinal answer: {prompt!r}"
    )
    judge = JudgeSynthesis(model)
    assert not judge.is_composite
    assert list(operator_signature(judge).parameters) == ["responses", "question"]
    answer = judge(["Paris", "Lyon"], question="Capital of France?")
    assert "Question: Capital of France?" in answer
    assert "1. Paris\\n2. Lyon" in answer
    assert "2 candidate answers" in answer


def test_judge_and_verifier_templates_are_checked():
    with pytest.raises(ModelConfigError, match="responses"):
        JudgeSynthesis(SimulatedModel(), "{question} only")
    with pytest.raises(ModelConfigError, match="answer"):
        Verifier(SimulatedModel(), "{question} {extra}")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Verdict: PASS\nExplanation: correct", Verdict(True, "Paris", "correct")),
        (
            "Verdict: **FAIL**\nExplanation: wrong city\nRevised answer: Paris",
            Verdict(False, "Paris", "wrong city"),
        ),
        ("no idea", Verdict(False, "Paris", "no idea")),
    ],
)
def test_verifier_parses_verdicts(reply, expected):
    verifier = Verifier(SimulatedModel(responses=lambda p, s: reply))
    assert verifier("Paris", "Capital of France?") == expected


def test_sequential_threads_named_inputs_to_later_stages():
    model = SimulatedModel(responses=_echo)
    pipeline = Sequential(
        [UniformEnsemble(3, model, "{question}"), JudgeSynthesis(model, "{question}: {responses}")]
    )
    assert pipeline.is_composite
    expected = "0|why?: 1. 0|why?\n2. 1|why?\n3. 2|why?"
    assert pipeline("why?") == expected
    assert pipeline(question="why?") == expected
    assert list(inspect.signature(pipeline.forward).parameters) == ["args", "kwargs"]
    assert list(operator_signature(pipeline).parameters) == ["question"]


def test_sequential_with_verifier_returns_a_verdict():
    model = SimulatedModel(responses=lambda p, s: "Verdict: PASS\nExplanation: ok")
    pipeline = Sequential([LLMOperator(model, "{question}"), Verifier(model)])
    verdict = pipeline(question="2+2?")
    assert verdict.passed and verdict.answer == "Verdict: PASS\nExplanation: ok"


def test_nested_ensemble_has_111_leaves_each_called_exactly_once():
    model = SimulatedModel()
    pipeline = nested_ensemble(model, width=10, depth=2)
    leaves = _leaves(pipeline)
    assert len(leaves) == 111
    units = [leaf for leaf in leaves if type(leaf) is LLMOperator]
    assert len({unit.sample for unit in units}) == 100  # no two units ask the same thing
    answer = pipeline("What limits parallel speedup?")
    assert isinstance(answer, str)
    assert model.calls == 111
    assert len(set(model.call_log)) == 111


def test_nested_ensemble_validates_depth():
    with pytest.raises(ModelConfigError, match="depth"):
        nested_ensemble(SimulatedModel(), depth=0)


def test_ensemble_units_as_graph_nodes_overlap_up_to_the_width():
    model = SimulatedModel(latency=0.2)
    graph = xcs.Graph()
    for unit in UniformEnsemble(6, model).units:
        graph.add_node(unit)
    xcs.execute_graph(graph, {"question": "q"}, options=xcs.ExecutionOptions(scheduler="parallel"))
    assert model.calls == 6 and model.max_in_flight == 6


def test_ensemble_units_as_graph_nodes_respect_the_model_cap():
    model = SimulatedModel(latency=0.05, max_concurrency=2)
    graph = xcs.Graph()
    for unit in UniformEnsemble(6, model).units:
        graph.add_node(unit)
    xcs.execute_graph(graph, {"question": "q"}, options=xcs.ExecutionOptions(scheduler="parallel"))
    assert model.calls == 6 and model.max_in_flight == 2


def test_models_and_operators_survive_pickling_for_remote_workers():
    import pickle

    from ember_xcs.models import OpenAICompatibleModel
    from ember_xcs.models.testing import OpenAITestServer

    sim = SimulatedModel(latency=0.0, max_concurrency=2, responses=["a", "b"])
    ensemble = pickle.loads(pickle.dumps(UniformEnsemble(3, sim)))
    assert ensemble("q") == UniformEnsemble(3, sim)("q")
    assert ensemble.units[0].model.limits.max_concurrency == 2
    with OpenAITestServer() as server:
        with OpenAICompatibleModel(server.url, "m", max_concurrency=3) as model:
            model.complete("warm")  # opens a connection pool, which must not be pickled
            with pickle.loads(pickle.dumps(model)) as copy:
                assert copy.complete("q").text == model.complete("q").text
                assert copy.limits is model.limits  # same process: the same shared cap
