"""The engines' config sections: `spark` (the SparkSession) and `ray` (ray.init)."""

from __future__ import annotations

from pydantic import Field, field_validator

from schemas.config import Section


class SparkConfig(Section):
    master: str | None = Field("local[*]", description="Spark master URL; null under spark-submit")
    app_name: str = "zipp"
    conf: dict[str, str] = Field(default_factory=dict, description="extra spark.* settings")

    @field_validator("conf", mode="before")
    @classmethod
    def _flatten(cls, value: object) -> object:
        """`spark.conf.spark.executor.memory=8g` nests on the command line: flatten it back
        to dotted Spark keys; scalar values become strings."""
        if not isinstance(value, dict):
            return value
        flat: dict[str, object] = {}

        def walk(prefix: str, v: object) -> None:
            if isinstance(v, dict):
                for k, sub in v.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), sub)
            else:
                flat[prefix] = (
                    v
                    if isinstance(v, str) or v is None
                    else str(v).lower()
                    if isinstance(v, bool)
                    else str(v)
                )

        walk("", value)
        return flat


class RayConfig(Section):
    address: str | None = Field(None, description="ray.init address; null starts a local Ray")
    num_cpus: int | None = None
