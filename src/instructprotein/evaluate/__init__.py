"""Evaluation: declarative tasks, one runner, baselines beside the model, a report people can read.

- :mod:`.tasks`: task files (YAML) and the built-in registry;
- :mod:`.data`: a task's items from packaged sets, user files or our held-out split (:mod:`.heldout`);
- :mod:`.scoring`: candidate log-likelihoods, the protein prefix computed once per protein;
- :mod:`.baselines`: majority class, term-frequency prior, homology transfer, composition classifier;
- :mod:`.stats`: Wilson intervals, AUPR with bootstrap, calibration, confusion matrices;
- :mod:`.generation`: BLEU, ROUGE-L, GO F-max, design validity / novelty / diversity / consistency;
- :mod:`.runner`: :func:`evaluate`, which writes ``results.json``, ``report.md`` and plots (:mod:`.report`);
  its phases: :mod:`.run_inputs`, :mod:`.combination_plan`, :mod:`.homology_search`, :mod:`.task_prompts`,
  :mod:`.model_runs`, :mod:`.choice_results`;
- :mod:`.commands`: what the ``instructprotein evaluate`` command calls.
"""

from instructprotein.evaluate.tasks import TaskSpec, list_tasks, load_task

__all__ = ["TaskSpec", "evaluate", "list_tasks", "load_task"]


def __getattr__(name: str):  # lazy: the runner imports torch
    if name == "evaluate":
        from instructprotein.evaluate.runner import evaluate

        return evaluate
    raise AttributeError(name)
