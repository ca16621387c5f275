"""Target marginals over the inferred demographics (`llm.demographics`' vocabulary): the
target file format, its loader and validation, and a persona's category under a target.

A target file is YAML (or JSON)::

    source:                      # where the figures come from (required, shown in reports)
      publisher: ...
      dataset: ...
      edition: ...
      url: ...
      figures: what the shares are (population, year, how they were derived)
    notes: [optional lines: how the figures were cut to the persona categories]
    attributes:
      gender: {female: 0.5, male: 0.5}
      age x gender: {"18-24 x female": 0.07, ...}   # a joint attribute, parts joined by " x "

An attribute is a persona demographic field (`FIELDS`: age, gender, region, occupation) or
a joint of distinct fields; its categories are that field's values (age bands, genders,
regions, occupations as `llm.demographics` infers them). Each attribute's shares must sum
to 1 within `TOLERANCE` (they are then normalised). Used by the report's raking
(`evaluation.summary.ipf_table`) and the stratified benchmark draw (`generation.bench`);
it lives on the ground floor so both can read it. `llm.wpp_targets` writes one from the
UN's World Population Prospects CSV.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llm.demographics import AGE_BANDS, FIELDS, GENDERS, OCCUPATIONS, REGIONS

#: what joins the fields of a joint attribute ("age x gender") and its categories
JOIN = " x "
_JOINED = re.compile(r"\s+x\s+", re.IGNORECASE)
#: how far an attribute's shares may sum from 1 (published shares are rounded)
TOLERANCE = 0.005
#: every field's categories, as personas carry them
VALUES: dict[str, tuple[str, ...]] = {
    "age": AGE_BANDS,
    "gender": GENDERS,
    "region": REGIONS,
    "occupation": tuple(sorted(set(OCCUPATIONS.values()))),
}
#: what a file's `source` mapping must say (dataset, edition and url where there are any)
SOURCE_KEYS = ("publisher", "figures")


class TargetError(ValueError):
    """A target file or mapping that cannot be used, with what is wrong in it."""


@dataclass(frozen=True)
class Targets:
    """Validated targets: attribute -> category -> share (each attribute sums to 1), where
    they come from (`source`, free text or the file's mapping) and the file, if any."""

    attributes: dict[str, dict[str, float]]
    source: dict | str = ""
    path: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """One line naming the source, for notes and reports."""
        if isinstance(self.source, Mapping):
            keys = ("publisher", "dataset", "edition", "url")
            text = ", ".join(str(self.source[k]) for k in keys if self.source.get(k))
        else:
            text = str(self.source)
        return text or "no source given"


def fields_of(attribute: str) -> list[str]:
    """The persona fields of an attribute ("age x gender" -> ["age", "gender"])."""
    return [p.strip().lower() for p in _JOINED.split(attribute.strip())]


def normalise(value: object) -> str | None:
    """A persona's value as targets name it: lower-cased, trimmed; None when empty."""
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def category(demographics: Mapping | None, attribute: str) -> str | None:
    """The persona's category under `attribute` (joint parts joined by `JOIN`); None when
    any part is unknown."""
    parts = [normalise((demographics or {}).get(f)) for f in fields_of(attribute)]
    return None if any(p is None for p in parts) else JOIN.join(parts)  # type: ignore[arg-type]


def _check_attribute(name: str, shares: object, where: str) -> dict[str, float]:
    """One attribute's shares, validated and normalised."""
    parts = fields_of(name)
    unknown = [p for p in parts if p not in FIELDS]
    if unknown or len(set(parts)) != len(parts):
        raise TargetError(
            f"{where}: attribute {name!r}: personas carry {', '.join(FIELDS)} "
            f"(a joint attribute joins distinct ones with {JOIN.strip()!r}, e.g. 'age x gender')"
        )
    if not isinstance(shares, Mapping) or not shares:
        raise TargetError(f"{where}: attribute {name!r} needs a mapping of category -> share")
    out: dict[str, float] = {}
    for raw, share in shares.items():
        cat = JOIN.join(p.strip().lower() for p in _JOINED.split(str(raw).strip()))
        values = cat.split(JOIN)
        if len(values) != len(parts):
            raise TargetError(f"{where}: {name}: category {raw!r} needs {len(parts)} part(s)")
        for f, v in zip(parts, values, strict=True):
            if v not in VALUES[f]:
                raise TargetError(
                    f"{where}: {name}: {v!r} is no {f} personas carry "
                    f"(known: {', '.join(VALUES[f])})"
                )
        if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
            raise TargetError(f"{where}: {name}: share of {raw!r} must be a number >= 0")
        if cat in out:
            raise TargetError(f"{where}: {name}: category {raw!r} given twice")
        out[cat] = float(share)
    total = sum(out.values())
    if abs(total - 1.0) > TOLERANCE:
        raise TargetError(
            f"{where}: {name}: shares sum to {total:.4f}, not 1 (tolerance {TOLERANCE})"
        )
    return {c: s / total for c, s in out.items()}


def validate(attributes: object, where: str = "targets") -> dict[str, dict[str, float]]:
    """attribute -> category -> share, checked (names personas carry, shares >= 0 summing
    to 1 within `TOLERANCE` per attribute) and normalised; `TargetError` says what is wrong."""
    if not isinstance(attributes, Mapping):
        raise TargetError(f"{where}: attributes must be a mapping of attribute -> shares")
    out: dict[str, dict[str, float]] = {}
    for a, shares in attributes.items():
        name = JOIN.join(fields_of(str(a)))
        if name in out:
            raise TargetError(f"{where}: attribute {a!r} given twice")
        out[name] = _check_attribute(str(a), shares, where)
    return out


def load_targets(path: str | Path) -> Targets:
    """A target file (YAML, or JSON by its .json suffix): `source` and `attributes`."""
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"target file not found: {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as e:  # a parse error names the line; keep it, not the stack
        raise TargetError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {e}") from None
    if not isinstance(doc, Mapping):
        raise TargetError(f"{p}: expected a mapping with 'source' and 'attributes'")
    extra = sorted(set(doc) - {"source", "attributes", "notes"})
    if extra:
        raise TargetError(
            f"{p}: unknown key(s) {', '.join(extra)} (known: source, notes, attributes)"
        )
    source = doc.get("source")
    if not source or not isinstance(source, Mapping | str):
        raise TargetError(f"{p}: 'source' is required: who published the figures, and where")
    lacking = [k for k in SOURCE_KEYS if isinstance(source, Mapping) and not source.get(k)]
    if lacking:
        raise TargetError(f"{p}: source needs {', '.join(lacking)} (see conf/ipf/)")
    attributes = validate(doc.get("attributes"), str(p))
    if not attributes:
        raise TargetError(f"{p}: 'attributes' names no attribute")
    notes = doc.get("notes") or []
    return Targets(
        attributes,
        dict(source) if isinstance(source, Mapping) else source,
        str(p),
        [str(n) for n in (notes if isinstance(notes, list) else [notes])],
    )


def resolve(file: str | None, inline: Mapping | None) -> Targets | None:
    """The targets in use: the file when one is set (the inline mapping is then ignored),
    else the inline mapping (validated the same way); None when neither names any."""
    if file:
        return load_targets(file)
    if inline:
        return Targets(validate(inline, "report.ipf_targets"), "inline report.ipf_targets")
    return None
