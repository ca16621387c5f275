"""A target file (`llm.demographic_targets`) from UN World Population Prospects: the
adult population of a location in a year by persona age band, sex, age band x sex, and
by WPP's six geographic regions, from the UN's population-by-age-and-sex CSV.

    python -m llm.wpp_targets WPP2024_PopulationBySingleAgeSex_Medium_1950-2100.csv.gz \
        --year 2024 --out conf/ipf/un-wpp-2024-world.yaml
"""

from __future__ import annotations

from pathlib import Path

from llm.demographic_targets import JOIN, TargetError, validate

#: UN WPP's six geographic regions (``Location`` in its CSV files) -> persona regions
WPP_REGIONS = {
    "Africa": "africa",
    "Asia": "asia",
    "Europe": "europe",
    "Latin America and the Caribbean": "latin_america",
    "Northern America": "north_america",
    "Oceania": "oceania",
}
#: the persona age bands as closed year ranges (the last open)
BAND_YEARS = {"18-24": (18, 24), "25-34": (25, 34), "35-44": (35, 44), "45-54": (45, 54)}
BAND_YEARS["55+"] = (55, 10**6)


def _ages(label: str) -> tuple[int, int]:
    """A WPP ``AgeGrp`` label ("20", "15-19", "100+") as a closed range of years."""
    label = str(label).strip()
    if label.endswith("+"):
        return int(label[:-1]), 10**6
    lo, _, hi = label.partition("-")
    return int(lo), int(hi or lo)


def _band(label: str) -> str | None:
    """The persona age band a WPP age group lies in; None under 18; an error when it
    straddles a band's edge (a 5-year group 15-19 cannot be split at 18 exactly)."""
    lo, hi = _ages(label)
    if hi < 18:
        return None
    for band, (a, b) in BAND_YEARS.items():
        if a <= lo and hi <= b:
            return band
    raise TargetError(
        f"WPP age group {label!r} straddles a persona age band's edge: use the single-age "
        "file (WPP2024_PopulationBySingleAgeSex_*.csv.gz)"
    )


def from_wpp(path: str | Path, year: int, location: str = "World") -> dict:
    """A target file's content from a UN WPP population-by-age-and-sex CSV (columns
    Location, Time, AgeGrp, PopMale, PopFemale; Variant, when present, must be Medium or
    Estimates): adult (18+) shares of `location` in `year` by age band, gender and
    age band x gender, and by region from WPP's six geographic regions (`WPP_REGIONS`)."""
    import pandas as pd

    cols = ["Location", "Time", "AgeGrp", "PopMale", "PopFemale"]
    df = pd.read_csv(path, low_memory=False)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TargetError(f"{path}: no column(s) {', '.join(missing)} (a WPP age-sex CSV?)")
    df = df[df["Time"] == year]
    if "Variant" in df.columns:
        df = df[df["Variant"].isin(["Medium", "Estimates"])]
    df = df.assign(band=[_band(a) for a in df["AgeGrp"]]).dropna(subset=["band"])
    world = df[df["Location"] == location]
    if world.empty:
        raise TargetError(f"{path}: no rows for {location!r} in {year}")
    joint = world.groupby("band")[["PopFemale", "PopMale"]].sum()
    total = float(joint.to_numpy().sum())
    cells = {
        f"{band}{JOIN}{g}": round(float(joint.loc[band, col]) / total, 6)
        for band in BAND_YEARS
        for g, col in (("female", "PopFemale"), ("male", "PopMale"))
    }
    attributes: dict[str, dict[str, float]] = {
        "age": {b: round(float(joint.loc[b].sum()) / total, 6) for b in BAND_YEARS},
        "gender": {
            "female": round(float(joint["PopFemale"].sum()) / total, 6),
            "male": round(float(joint["PopMale"].sum()) / total, 6),
        },
        f"age{JOIN}gender": cells,
    }
    regions = df[df["Location"].isin(list(WPP_REGIONS))]
    if not regions.empty:
        adults = regions.groupby("Location")[["PopFemale", "PopMale"]].sum().sum(axis=1)
        attributes["region"] = {
            WPP_REGIONS[r]: round(float(v) / float(adults.sum()), 6) for r, v in adults.items()
        }
    return {"attributes": validate(attributes, str(path)), "total_adults_thousands": total}


def main(argv: list[str] | None = None) -> None:
    """``python -m llm.wpp_targets WPP_CSV --year 2024 --out FILE``: write a
    target file from the UN's CSV (the figures' source goes in the file)."""
    import argparse

    import yaml

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("csv", help="WPP2024_PopulationBySingleAgeSex_Medium_*.csv.gz or similar")
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--location", default="World")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    got = from_wpp(a.csv, a.year, a.location)
    doc = {
        "source": {
            "publisher": "United Nations, Department of Economic and Social Affairs, "
            "Population Division",
            "dataset": "World Population Prospects 2024, Online Edition",
            "edition": "2024 (medium variant / estimates)",
            "url": "https://population.un.org/wpp/",
            "file": Path(a.csv).name,
            "figures": f"{a.location}, {a.year}: shares of the population aged 18+ "
            f"({got['total_adults_thousands']:.0f} thousand) by persona age band, sex, age "
            "band x sex, and by the six UN geographic regions; computed by "
            "llm.demographic_targets.from_wpp",
            "license": "CC BY 3.0 IGO",
        },
        "attributes": got["attributes"],
    }
    Path(a.out).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
