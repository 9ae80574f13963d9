"""The model card: a README.md in every model folder, saying what the model is, what it was trained on, how it was
chosen, how good it is (with the sample size behind each number) and what it cannot do. The Hugging Face Hub shows
it as the repository's page; its front matter is the Hub's model-card metadata."""

from __future__ import annotations

import json
from typing import Any

PIPELINE_TAGS = {"image": "image-classification", "text": "text-classification"}


def model_card(document: dict[str, Any], report: dict[str, Any], components: dict[str, dict]) -> str:
    """Markdown for a model folder from its description, its fit report and its components' configs."""
    from .fitreport import FitReport

    modality = document["modality"]
    classes = [str(c) for c in document["classes"]]
    fit = FitReport.from_dict(report)
    featurizer = components.get("featurizer") or {}
    counts = fit.class_counts
    noun = "image" if modality == "image" else "text"
    example = "photo.jpg" if modality == "image" else "a text to classify"
    kind = (document.get("target") or {}).get("kind", "class")
    what = {"class": "classifier", "labels": "tagger (several labels per item)", "number": "regressor (a number)"}[kind]
    answers = {"class": f"{len(classes)} classes: {', '.join(f'`{c}`' for c in classes)}.",
               "labels": f"Any of {len(classes)} labels per item: {', '.join(f'`{c}`' for c in classes)}; each "
                         "label is given where its probability reaches its own threshold (chosen on held-out folds).",
               "number": "It predicts a number (ridge regression on the features)."}[kind]
    lines = ["---", "library_name: transferkit", f"pipeline_tag: {PIPELINE_TAGS[modality]}",
             "tags:", "- transferkit", "- transfer-learning", "- few-shot", "---", "",
             f"# {'An' if noun == 'image' else 'A'} {noun} {what} made with transferkit", "", answers, "",
             "## Model", "",
             f"- Representation: {_describe_featurizer(featurizer)}",
             f"- Strategy: `{fit.strategy or '?'}`",
             f"- Why: {fit.reason or 'not recorded'}", "",
             "## Training data", ""]
    n = fit.n_items(noun)
    lines.append(f"{n} labeled {noun}s" + (":" if counts else "."))
    if counts:
        lines += ["", f"| {'label' if kind == 'labels' else 'class'} | examples |", "|---|---|"] + [
            f"| {_cell(c)} | {k} |" for c, k in counts.items()]
    if fit.skipped:
        lines += ["", f"{len(fit.skipped)} unreadable input(s) were skipped."]
    for note in fit.notes:
        lines += ["", f"Note: {note}."]
    lines += _unlabeled_lines(fit, noun)
    lines += ["", "## How good it is", ""] + _metric_lines(fit)
    lines += ["", "## Limitations", "",
              _open_set_line(fit.open_set, len(classes)) if kind == "class" else (
                  "- It cannot say that an input is unlike everything it was trained on: every input gets an answer."),
              "- Its quality was estimated on the training labels themselves (cross-validation or a held-out split). "
              "With a few examples per class that estimate is wide (see its interval) and data unlike the "
              "training examples (other sources, cameras, writing styles) can score lower: evaluate it on labeled "
              "data of your own with `transferkit evaluate`.",
              f"- The representation was pretrained on data of its own ({_pretrained_on(featurizer)}); its biases "
              "carry over.", "",
              "## Use it", "", "```bash", "pip install transferkit",
              f"transferkit predict MODEL {'photo.jpg' if modality == 'image' else '--text ' + repr(example)} --top 3",
              "transferkit serve MODEL            # a prediction server on 127.0.0.1",
              "transferkit export MODEL --format onnx", "```", "",
              "```python", "from transferkit import load_model", "", "model = load_model(\"MODEL\")",
              f"model.predict([{example!r}])", "```", "",
              "MODEL is this folder, or `hf://OWNER/NAME` once it is on the Hugging Face Hub.", "",
              "## Versions", "", "```json", json.dumps(document.get("versions") or {}, indent=1), "```", ""]
    return "\n".join(lines)


def _open_set_line(open_set: dict | None, n_classes: int) -> str:
    if not open_set:
        return (f"- It always answers one of its {n_classes} classes: an input that belongs to none of them still "
                "gets one (look at the probability).")
    auroc = open_set.get("auroc") or {}
    chosen = auroc.get(open_set.get("score"))
    return (f"- It answers one of its {n_classes} classes unless asked to reject (`predict --reject auto`): then an "
            f"input that belongs to none of them can get `unknown`, told by the `{open_set.get('score')}` score"
            + (f", which separated a class held out of training from the others at AUROC {chosen:.2f} on the "
               f"labeled items ({open_set.get('held_out')} trials"
               + (f"; and the {open_set['n_other']} examples of other things given at fit, counted as much"
                  if open_set.get("n_other") else "")
               + (f"; each trial mining the {open_set['n_pool']} unlabeled items for ones unlike its labeled"
                  if open_set.get("n_pool") else "") + ")" if chosen is not None else "")
            + ". Expect some such inputs to be accepted anyway: measure it with `transferkit evaluate --reject auto` "
              "on data that holds other classes.")


def _unlabeled_lines(fit, noun: str) -> list[str]:
    used, student = fit.unlabeled, fit.student
    if not used:
        return []
    lines = ["", "## Unlabeled data", "", f"{used.get('n')} unlabeled {noun}s were given"
             + (": not used by this kind of model." if not used.get("used") else
                f"; centred on them: {'yes' if used.get('centred') else 'no'} (domain classifier AUC "
                f"{used.get('shift_auc')}), self-trained on them: {'yes' if used.get('self_training') else 'no'}"
                + ("; the labels they carry drawn to their own clusters as well (soft k-means seeded with the head's "
                   "and label spreading's)" if used.get("clusters") else "") + ".")]
    if student and student.get("kept"):
        lines += ["", f"This model is a one-network student: it learned the labels that the side-by-side teacher "
                      f"({fit.teacher}) gave the unlabeled {noun}s. On the same held-out folds the "
                      f"teacher scored {student.get('teacher_fold_accuracy', float('nan')):.3f} and the student "
                      f"{student.get('student_estimate', float('nan')):.3f}; they agreed on "
                      f"{student.get('agreement', float('nan')):.0%} of them. The cross-validated figures below the "
                      "first are the teacher's."]
        lines += _vote_lines(student.get("vote") or {}, student.get("neighbours"), noun, "the teacher's")
    elif student and student.get("distilled") is False:
        lines += ["", f"The backbones side by side were kept rather than distilled into one network: the unlabeled "
                      f"{noun}s changed nothing they learned."]
    if student and student.get("kept"):  # the saved model is the student, whose own vote is above
        return lines
    vote = used.get("vote") or {}
    return lines + _vote_lines(vote, vote.get("neighbours"), noun, "the model's")


def _vote_lines(vote: dict, neighbours, noun: str, whose: str) -> list[str]:
    """What a kept nearest-neighbour vote (``heads.neighbour_vote``) adds to the model, with its held-out evidence."""
    if not vote.get("kept"):
        return []
    return ["", f"Its probabilities are half its linear head's and half a vote of its nearest neighbours among "
                f"{neighbours} labeled and unlabeled {noun}s (the unlabeled ones carry {whose} labels, spread along "
                "their own neighbourhoods): on the held-out folds "
                f"{vote.get('fold_accuracy_with', float('nan')):.3f} with the vote, "
                f"{vote.get('fold_accuracy_without', float('nan')):.3f} without. The model folder holds those "
                f"{noun}s' features (not the {noun}s)."]


def _metric_lines(fit) -> list[str]:
    out = []
    for a in fit.measured:
        folds = f", {a.folds} folds" if a.folds else ""
        out.append(f"- {a.how[0].upper() + a.how[1:]}: **{a.value:.3f}** (n={a.n if a.n is not None else '?'}{folds}, "
                   f"95% interval {a.interval[0]:.2f}-{a.interval[1]:.2f})")
    return out or ["- No accuracy estimate was recorded (too few examples to hold any out)."]


def _describe_featurizer(config: dict) -> str:
    members = config.get("members")
    if members:
        return "several networks side by side: " + ", ".join(_describe_featurizer(m) for m in members)
    name = (config.get("spec") or {}).get("name") or config.get("kind", "?")
    tuned = {True: " (fine-tuned on this data)", False: " (frozen)"}.get(config.get("tuned"), "")
    return f"`{name}`, {config.get('kind', '?')}{tuned}"


def _pretrained_on(config: dict) -> str:
    kinds = {m.get("kind") for m in (config.get("members") or [config])}
    if kinds <= {"image-backbone"}:
        return "ImageNet photographs"
    if kinds & {"sentence-encoder"}:
        return "English sentence pairs from the web"
    return "see each component's source"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")
