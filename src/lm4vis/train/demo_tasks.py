"""What `lm4vis demo --task` can run: one row per kind of data (light: ``--help`` reads it
without importing the engine, torch or the config layer)."""

from __future__ import annotations

from dataclasses import dataclass

VARIANTS = ("baseline", "frozen-lm", "mlp")
DATASETS = ("fashion-mnist", "animal-mnist")


@dataclass(frozen=True)
class Control:
    """An extra row of a demo: the baseline host with an input taken away (the image, the
    situation, ...), so the reader sees how much that input carries.

    Args:
        label: the row's name in the report (``language-only``).
        overrides: ``(dotted key, value)`` pairs applied to the demo's config; the block
            variant is ``baseline`` unless they set it.
        summary: what it removes, for the reading and ``--help``.
    """

    label: str
    overrides: tuple[tuple[str, object], ...]
    summary: str

    def cell(self) -> tuple[str, dict[str, object]]:
        """``(label, overrides)`` as a grid cell (`lm4vis.train.compare.run_grid`)."""
        return self.label, {"block.variant": "baseline", **dict(self.overrides)}


@dataclass(frozen=True)
class DemoTask:
    """One kind of data `lm4vis demo --task` runs the three variants on.

    Args:
        preset: the demo's budget (a preset under ``configs/``).
        quick_preset: the smoke budget of ``--quick``.
        summary: what it trains, for ``--help``.
        datasets: embedded datasets ``--dataset`` may choose, in order of preference; the
            first one installed is taken. Empty: the preset's own dataset, which needs no files.
        metrics: declared metric names the reading reports beside the monitor metric.
        reference: ``"module:attr"`` of ``reference(cfg) -> {"label", "metrics", "scenes"}``,
            a no-learning baseline scored on the same validation split, or None.
        controls: further rows trained with every seed after the three variants (`Control`);
            ``--no-controls`` leaves them out.
    """

    preset: str
    quick_preset: str
    summary: str
    datasets: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    reference: str | None = None
    controls: tuple[Control, ...] = ()


#: ``--task`` -> what the demo trains. The default is the first.
DEMO_TASKS: dict[str, DemoTask] = {
    "images": DemoTask("demo", "demo-quick", "a small ViT on Fashion-MNIST (else Animal-MNIST)", DATASETS),
    "points": DemoTask("points-demo", "points-demo-quick", "a small Point-BERT on the generated shapes3d"),
    "video": DemoTask("video-demo", "video-demo-quick", "a small VideoMAE on the generated motion-mnist"),
    "motion": DemoTask("motion-demo", "motion-demo-quick", "a small VectorNet on the sim-traffic simulator",
                       metrics=("minADE@6", "MR@6", "minADE@1", "minFDE@1", "MR@1"),
                       reference="lm4vis.tasks.forecasting:constant_velocity_reference"),
    "vqa": DemoTask("vqa-demo", "vqa-demo-quick", "a small METER-style fusion model on the generated shapes-vqa",
                    metrics=("acc/closest", "acc/shape"),  # the question types vqa-demo asks
                    reference="lm4vis.tasks.vqa:blind_prior_reference",
                    controls=(Control("language-only", (("data.blind", "image"),), "every image replaced by zeros"),
                              Control("image-only", (("data.blind", "text"),), "every question cut to [CLS] [SEP]"))),
    "retrieval": DemoTask("retrieval-demo", "retrieval-demo-quick",
                          "a small dual encoder (image and text towers) on the generated shapes-captions",
                          metrics=("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"),
                          reference="lm4vis.tasks.retrieval:chance_reference"),
    "vqa3d": DemoTask("vqa3d-demo", "vqa3d-demo-quick", "a small scene-VQA model on the generated rooms3d-qa rooms",
                      metrics=("em1/direction", "em1/attribute", "em1/counting", "em1/existence", "em1/distance"),
                      reference="lm4vis.tasks.scene_qa:answer_prior_reference",
                      controls=(Control("situation-blind", (("data.blind", "situation"),), "the situation sentence removed"),
                                Control("scene-blind", (("data.blind", "scene"),), "every point of the scene set to zero"))),
}
DEFAULT_TASK = next(iter(DEMO_TASKS))


def demo_folder(dataset: str, quick: bool = False) -> str:
    """The folder a demo on ``dataset`` writes its runs and ``results.json`` into, under ``--out``."""
    return f"demo{'-quick' if quick else ''}-{dataset}"


__all__ = ["VARIANTS", "DATASETS", "Control", "DemoTask", "DEMO_TASKS", "DEFAULT_TASK", "demo_folder"]
