"""The evaluation's config sections: `judge` (the LLM judge, the learned preference judge
and the agreement set) and `report`."""

from __future__ import annotations

from pydantic import Field, field_validator

from llm import BACKENDS
from llm.config import LLMSettings, LLMSpec
from schemas.config import Section

#: `judge.backend` value that turns the LLM judge off (the learned preference judge of
#: the score stage is the embedded default's personalised judge)
JUDGE_OFF = "none"


class JudgeConfig(LLMSettings, LLMSpec):
    """The persona-conditioned LLM judge, configured apart from the rewriting LLMs (its
    own model, runtime and persona choice): a multimodal model behind an
    OpenAI-compatible endpoint, the template (the transparent reference-similarity
    scorer, a duplicate of CLIPScore/10) or ``none`` (off). Also the learned preference
    judge's training settings (``preference_*``) and the agreement set's size. The runtime
    fields are the `llm` section's (`LLMSettings`); only the defaults below differ."""

    backend: str = Field(
        JUDGE_OFF,
        description="none (off: the learned preference judge scores), a multimodal backend "
        "(openai) or template (CLIPScore vs references / 10, not an LLM)",
    )
    persona_llm: str | None = Field(
        None,
        description="backend:model label of the LLM whose persona the judge sees for every "
        "image of a user (one scale over a sweep); null: the first configured LLM",
    )
    max_tokens: int = Field(256, ge=1)
    seed: int = Field(0, description="judge sampling seed and the preference judge's seed")
    preference_negatives: int = Field(
        4, ge=1, description="other users' history images per positive in preference training"
    )
    preference_users: int = Field(
        20000, ge=2, description="users (seeded sample) whose history trains the preference judge"
    )
    history_images: int = Field(
        8,
        ge=1,
        description="history images per user the history metrics compare with (clip_history, "
        "dino_history: Pigeon's history CLIP-I)",
    )
    dino: bool = Field(
        True,
        description="also score in the second image feature space, EfficientNet-Lite0's "
        "packaged ImageNet features (dino_ref, dino_history); false: those columns null",
    )
    agreement_images: int = Field(
        32,
        ge=0,
        description="agreement set: other benchmark users' reference images scored per "
        "benchmark user by every scorer (seeded; 0: none)",
    )

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, backend: str) -> str:
        if backend != JUDGE_OFF and backend not in BACKENDS:
            known = ", ".join([JUDGE_OFF, *BACKENDS])
            raise ValueError(f"unknown backend {backend!r} (known: {known})")
        return backend

    @property
    def off(self) -> bool:
        """True when no LLM judge runs (``judge.backend: none``)."""
        return self.backend == JUDGE_OFF

    @property
    def label(self) -> str:
        """How rows name the judge: ``backend:model``, or ``none`` when off."""
        return JUDGE_OFF if self.off else f"{self.backend}:{self.model}"


class ReportConfig(Section):
    grids: int = Field(6, ge=1, description="image grids (user, prompt) in the report")
    ipf_targets: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="target marginals per persona demographic, e.g. {gender: {female: 0.5}}; "
        "ignored when ipf_targets_file is set",
    )
    ipf_targets_file: str | None = Field(
        None,
        description="target file (source + attribute -> category -> share, e.g. "
        "conf/ipf/example-gender.yaml; llm.demographic_targets); wins over ipf_targets",
    )
    ground_truth: str | None = Field(
        None,
        description="sample world's ground_truth folder: the report (and no stage before it) "
        "joins the agreement set with the planted tastes and checks persona fidelity; "
        "null: neither",
    )

    @field_validator("ipf_targets")
    @classmethod
    def _known_demographics(cls, targets: dict) -> dict:
        """Inline targets name what personas carry and sum to 1 per attribute (as a file)."""
        from llm.demographic_targets import validate

        validate(targets, "report.ipf_targets")
        return targets
