"""Batched prompts: one `LLMOperator`, a list of prompts, `vmap` to run them all at once.

Purpose: classify a batch of support tickets with one prompt template. `xcs.vmap` maps
the operator over the list: one scheduler node per ticket, all in flight together, the
results in input order. A template with two placeholders maps one argument and
broadcasts the other (`in_axes`); `max_workers` caps the batch when a provider limits
concurrent requests, and a model's own `max_concurrency` caps every user of that model.

Features: `xcs.vmap` over an `LLMOperator`, `in_axes=(0, None)`, keyword arguments
mapped by name, `execution_options(max_workers=...)`, `SimulatedModel(max_concurrency=...)`.

How to run:

    python examples/models/34_batched_prompts.py
"""

# expect: ^8 tickets -> 8 labels in input order: True$
# expect: ^in flight at once: 8$
# expect: ^with max_workers=3: at most 3 in flight$
# expect: ^model max_concurrency=2: at most 2 in flight$
# expect: ^two placeholders, one broadcast: \['fr: ticket 0', 'fr: ticket 1', 'fr: ticket 2'\]$

import ember_xcs as xcs
from ember_xcs import models

tickets = [f"ticket {i}: my order #{i} did not arrive" for i in range(8)]


def label_for(prompt: str, sample: int) -> str:
    return prompt.split(":")[
        1
    ].strip()  # the simulated model echoes the ticket number


model = models.SimulatedModel(latency=0.03, responses=label_for)
classify = models.LLMOperator(model, "Label: {ticket}")

labels = xcs.vmap(classify)(tickets)
print(
    f"8 tickets -> {len(labels)} labels in input order:",
    labels == [f"ticket {i}" for i in range(8)],
)
print("in flight at once:", model.max_in_flight)

model.reset_counters()
with xcs.execution_options(max_workers=3):
    xcs.vmap(classify)(tickets)
print(f"with max_workers=3: at most {model.max_in_flight} in flight")

capped = models.SimulatedModel(
    latency=0.03, responses=label_for, max_concurrency=2
)
xcs.vmap(models.LLMOperator(capped, "Label: {ticket}"))(tickets)
print(f"model max_concurrency=2: at most {capped.max_in_flight} in flight")

translate = models.LLMOperator(
    models.SimulatedModel(
        responses=lambda prompt, sample: (
            prompt.split("|")[1] + ": " + prompt.split("|")[2]
        )
    ),
    "|{language}|{text}",
)
out = xcs.vmap(translate, in_axes=(None, 0))(
    "fr", [f"ticket {i}" for i in range(3)]
)
print("two placeholders, one broadcast:", out)
