"""Run a graph on Dask: the whole plan goes to Dask's scheduler as one task graph.

Purpose: scale an ensemble past one process. `scheduler="dask"` submits every node at once
as a Dask task whose inputs are its dependencies' outputs, so Dask runs the dataflow; a
failing node's dependents are skipped, and with `return_partial_results=True` the rest
still runs.

Features: `ExecutionOptions(scheduler="dask", dask_client=...)`, partial results
(`failures`, `skipped`), a node error that is also the operator's own exception type.

How to run: `python examples/advanced/62_dask_graph.py` (needs the `dask` extra). It starts
an in-process `distributed.Client`; pass a scheduler address as `dask_client` for a
cluster.
"""

# expect: ^ensemble: 8 answers judged -> ANSWER 7 on dask$
# expect: ^partial: failures \['flaky'\], skipped \['summarise'\], kept \['steady'\]$
# expect: ^raised ValueError from node flaky$

import time

from distributed import Client

import ember_xcs as xcs


def answer(prompt: str, i: int) -> str:
    time.sleep(0.05)  # a stand-in for an LLM call
    return f"answer {i}"


def judge(*answers: str) -> str:
    return max(answers).upper()


def flaky(prompt: str) -> str:
    raise ValueError(f"backend down for {prompt!r}")


def main() -> None:
    ensemble = xcs.Graph()
    ensemble.add_node(judge, node_id="judge")
    for i in range(8):
        ensemble.add_node(
            lambda prompt, i=i: answer(prompt, i), node_id=f"a{i}"
        )
        ensemble.connect(f"a{i}", "judge")

    mixed = xcs.Graph()
    mixed.add_node(flaky, node_id="flaky")
    mixed.add_node(lambda text: text.upper(), node_id="summarise")
    mixed.connect("flaky", "summarise")
    mixed.add_node(lambda prompt: prompt.lower(), node_id="steady")

    with Client(processes=False, dashboard_address=":0") as client:
        options = xcs.ExecutionOptions(scheduler="dask", dask_client=client)
        result = xcs.execute_graph(ensemble, {"prompt": "q"}, options=options)
        print(
            f"ensemble: 8 answers judged -> {result['judge']} on {result.stats.scheduler}"
        )

        partial = xcs.execute_graph(
            mixed,
            {"prompt": "Q"},
            options=options.replace(return_partial_results=True),
        )
        print(
            f"partial: failures {sorted(partial.failures)}, skipped {partial.skipped}, "
            f"kept {sorted(partial)}"
        )
        try:
            xcs.execute_graph(mixed, {"prompt": "Q"}, options=options)
        except (
            ValueError
        ) as error:  # also an xcs.NodeExecutionError naming the node
            print(f"raised ValueError from node {error.node_id}")


if __name__ == "__main__":
    main()
