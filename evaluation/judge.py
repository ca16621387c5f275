"""A persona-conditioned judge (P-MLLM / PIGReward style): a multimodal LLM sees the
persona and the image and returns a score with a reason, through the LLM backends.

The judge is configured apart from the rewriting LLMs (`judge.*`: its own model and
runtime) and sees ONE persona per user, that of `judge.persona_llm` (default: the first
configured LLM), whichever LLM made the image, so a sweep is judged on one scale
(`judge_persona_llm`). The template backend does not look at the picture: it returns
the image's similarity to the user's reference images (CLIPScore / 10, a duplicate,
labelled ``template`` in every table); ``judge.backend: none`` turns the LLM judge off,
the learned preference judge (`evaluation.preference_judge`) being the embedded
default's personalised judge."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.persona import json_object, reply_schema

JUDGE_VERSION = "judge-v1"


def judge_persona_llm(persona_llm: str | None, llm_labels: list[str]) -> str:
    """The LLM label whose persona the judge sees: `judge.persona_llm`, else the first
    configured LLM."""
    return persona_llm or llm_labels[0]


def judge_messages(persona: str, prompt: str | None, png: bytes) -> list[dict]:
    """Chat messages for a multimodal judge: persona in the system turn, image inline;
    `prompt` None for a posted (not generated) image, as in the agreement set."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    said = (
        f"The image was generated for: {prompt}"
        if prompt is not None
        else "This image was posted by someone online."
    )
    return [
        {
            "role": "system",
            "content": "You judge images for one person. Their persona:\n\n"
            f"{persona}\n\nScore how much this person would like the image, from 1 (not at "
            'all) to 10 (love it). Reply with one JSON object: {"score": <1-10>, '
            '"reason": "<one sentence>"}.',
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": said},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        },
    ]


class Judgement(BaseModel):
    """A judge's reply: the model that validates it and whose JSON schema constrains it."""

    model_config = ConfigDict(extra="ignore")
    score: float = Field(ge=0, le=10, description="how much this person would like it, 1-10")
    reason: str = Field("", description="one sentence")

    @field_validator("reason", mode="before")
    @classmethod
    def _short_text(cls, v: object) -> str:
        return str(v or "")[:500]


#: the judge task's reply schema (``response_format: json_schema``)
JUDGE_SCHEMA = reply_schema(Judgement)


def parse_judgement(text: str) -> dict:
    """A judge's reply -> {"score": float in [0, 10], "reason": str}, or ValueError."""
    data = json_object(text)
    try:
        return Judgement.model_validate(data).model_dump()
    except ValidationError as e:
        err = e.errors()[0]
        if err["loc"] == ("score",) and err["type"] in ("greater_than_equal", "less_than_equal"):
            raise ValueError(f"score: {float(data['score'])} is outside 0-10") from None
        if err["loc"] == ("score",):
            raise ValueError("score: a number from 1 to 10 is required") from None
        raise ValueError(f"{err['loc'][0]}: {err['msg']}") from None
