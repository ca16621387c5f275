"""Demographics from what users say about themselves: a transparent cue lexicon.

The template backend (no LLM) fills a persona's demographics from here, so they appear
only where the evidence shows them. The cues are the generic kinds that the work on
inferring Reddit users' attributes relies on:

* explicit self-reports ("I'm a 34 year old", "I (23F)", "as a woman", "I'm nonbinary",
  "as an Aussie", "I live in Canada"), the seed of most self-labelled Reddit corpora
  (e.g. age/gender tags in r/relationships-style posts, "I am a ..." statements);
* relational and life-stage cues ("my husband", "my girlfriend", "my grandkids", "since
  I retired", "in college", "my kids' school run");
* regional spelling, slang, greetings and particles (Commonwealth "colour/favourite",
  "mate/cheers/knackered"; US/Canadian "y'all/gonna/toque"; Australian/New Zealand
  "arvo/reckon/heaps/kia ora"; Spanish and Portuguese greetings and laughter "jajaja/
  kkkk"; Singlish "lah/leh", Japanese "desu/arigatou", Hindi-English "yaar"; South
  African "lekker/braai/eish", Nigerian "abeg/wahala", Swahili "asante/sawa") and
  non-Latin scripts.

The lexicon is written from that real-world knowledge, not from any generator. Cues
are matched case-insensitively with word boundaries ("mate" never fires inside
"ultimate"); explicit self-reports count 2, indirect cues 1. A field gets its value
with the most cue weight only with at least `min_cues` and a clear lead over the
runner-up; otherwise it stays None. `demographic_cues` gives the counts behind each
decision.
"""

from __future__ import annotations

import re
from collections import Counter

FIELDS = ("age", "gender", "region", "occupation")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("female", "male", "nonbinary")
REGIONS = ("north_america", "europe", "latin_america", "asia", "oceania", "africa")
STRONG, WEAK = 2, 1

_L, _R = r"(?<![\w])", r"(?![\w])"  # word boundaries that treat apostrophes as breaks
_IM = r"(?:i'?m|i am|im)"
_AS_A = r"(?:as an?|i'?m an?|i am an?|im an?)"


def _cues(*phrases: str) -> str:
    """An alternation of literal phrases (spaces match any whitespace)."""
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in phrases)


# field -> value -> [(regex source, weight)]
_LEXICON: dict[str, dict[str, list[tuple[str, int]]]] = {
    "age": {
        "18-24": [
            (
                rf"{_IM} (?:in|at) (?:college|uni|university)|{_IM} a (?:college|uni) student",
                STRONG,
            ),
            (
                rf"{_IM} (?:a )?(?:freshman|sophomore|undergrad)|in my early (?:20s|twenties)",
                STRONG,
            ),
            (
                _cues(
                    "my dorm",
                    "my roommate",
                    "my roommates",
                    "freshman year",
                    "sophomore year",
                    "finals week",
                    "my professor",
                    "my parents won't let me",
                    "still live with my parents",
                    "gap year",
                    "my student loan",
                    "my first year of uni",
                    "my first semester",
                ),
                WEAK,
            ),
        ],
        "25-34": [
            (r"in my (?:late (?:20s|twenties)|early (?:30s|thirties))", STRONG),
            (
                _cues(
                    "our wedding",
                    "just got married",
                    "my fiance",
                    "my fiancé",
                    "my fiancee",
                    "my fiancée",
                    "our first baby",
                    "our first child",
                    "my newborn",
                    "my toddler",
                    "first time mom",
                    "first time dad",
                    "grad school",
                    "my phd",
                    "my first house",
                    "our first home",
                    "my first real job",
                ),
                WEAK,
            ),
        ],
        "35-44": [
            (r"in my (?:late (?:30s|thirties)|early (?:40s|forties)|(?:30s|thirties))", STRONG),
            (
                _cues(
                    "my kids",
                    "my children",
                    "the kids' school",
                    "school run",
                    "school pickup",
                    "my son's team",
                    "my daughter's team",
                    "pta meeting",
                    "our mortgage",
                    "midlife crisis",
                    "my preteen",
                    "soccer mom",
                    "parent teacher",
                ),
                WEAK,
            ),
        ],
        "45-54": [
            (r"in my (?:late (?:40s|forties)|early (?:50s|fifties)|(?:40s|forties))", STRONG),
            (
                _cues(
                    "empty nest",
                    "empty nester",
                    "empty nesters",
                    "my teenagers",
                    "my teens",
                    "kids are off to college",
                    "my son is in college",
                    "my daughter is in college",
                    "menopause",
                    "perimenopause",
                    "my college kid",
                    "our 20th anniversary",
                    "our 25th anniversary",
                ),
                WEAK,
            ),
        ],
        "55+": [
            (
                r"in my (?:late (?:50s|fifties)|(?:50s|fifties)|(?:60s|sixties)|(?:70s|seventies)"
                rf"|(?:80s|eighties))|{_IM} (?:retired|a retiree|a pensioner)|since i retired",
                STRONG,
            ),
            (
                _cues(
                    "my grandson",
                    "my granddaughter",
                    "my grandbaby",
                    "grandkids",
                    "grandchildren",
                    "my retirement",
                    "in retirement",
                    "my pension",
                    "senior discount",
                    "on medicare",
                    "back in the 60s",
                    "back in the 70s",
                    "after i retired",
                    "retired now",
                ),
                WEAK,
            ),
        ],
    },
    "gender": {
        "female": [
            (
                rf"{_AS_A} (?:woman|girl|gal|lady|female|mom|mother|mum|wife|grandma|grandmother)"
                rf"|{_IM} (?:female|a trans woman)|{_AS_A} trans woman",
                STRONG,
            ),
            (
                _cues(
                    "my husband",
                    "my hubby",
                    "my boyfriend",
                    "my bf",
                    "stay at home mom",
                    "sahm",
                    "when i was pregnant",
                    "my pregnancy",
                    "i'm pregnant",
                    "fellow ladies",
                    "us girls",
                    "my period",
                    "my maternity leave",
                ),
                WEAK,
            ),
        ],
        "male": [
            (
                rf"{_AS_A} (?:man|guy|dude|male|dad|father|husband|grandpa|grandfather)"
                rf"|{_IM} (?:male|a trans man)|{_AS_A} trans man",
                STRONG,
            ),
            (
                _cues(
                    "my wife",
                    "my wifey",
                    "my girlfriend",
                    "my gf",
                    "my missus",
                    "the missus",
                    "stay at home dad",
                    "sahd",
                    "my beard",
                    "fellow dudes",
                    "my paternity leave",
                    "my prostate",
                ),
                WEAK,
            ),
        ],
        "nonbinary": [
            (
                rf"{_IM} (?:non-?binary|nb|enby|genderqueer|genderfluid|agender)"
                rf"|{_AS_A} (?:non-?binary person|enby|nb person)"
                r"|my pronouns are they|\(they/them\)",
                STRONG,
            ),
            (_cues("they/them", "enby", "non-binary", "nonbinary", "genderqueer"), WEAK),
        ],
    },
    "region": {
        "north_america": [
            (
                rf"{_AS_A} (?:american|canadian)|{_IM} (?:american|canadian)"
                r"|(?:i live in|i'm from|im from|here in) (?:the us|the usa|the states|america"
                r"|canada|texas|california|ohio|florida|new york|ontario|toronto|chicago)",
                STRONG,
            ),
            (
                _cues(
                    "y'all",
                    "ya'll",
                    "gonna",
                    "wanna",
                    "fixin to",
                    "fixing to",
                    "howdy",
                    "you guys",
                    "hella",
                    "ope",
                    "yinz",
                    "toque",
                    "loonie",
                    "toonie",
                    "double double",
                    "timmies",
                    "sidewalk",
                    "gas station",
                    "zip code",
                    "freeway",
                    "color",
                    "favorite",
                    "neighbor",
                    "flavor",
                    "thanksgiving",
                    "fourth of july",
                    "4th of july",
                    "walmart",
                    "costco",
                    "bucks",
                ),
                WEAK,
            ),
        ],
        "europe": [
            (
                rf"{_AS_A} (?:brit|british|german|french|dutch|swede|italian|irish|scot|pole)"
                rf"|{_IM} (?:british|english|scottish|welsh|irish|german|french|dutch|italian)"
                r"|(?:i live in|i'm from|im from|here in) (?:the uk|britain|england|scotland"
                r"|wales|ireland|germany|france|spain|italy|the netherlands|sweden|poland"
                r"|london|berlin|paris|europe)",
                STRONG,
            ),
            (
                _cues(
                    "colour",
                    "favourite",
                    "flavour",
                    "neighbour",
                    "honour",
                    "humour",
                    "behaviour",
                    "centre",
                    "theatre",
                    "realise",
                    "apologise",
                    "jewellery",
                    "aluminium",
                    "mate",
                    "cheers",
                    "bloody",
                    "innit",
                    "quid",
                    "fortnight",
                    "whilst",
                    "knackered",
                    "gutted",
                    "chuffed",
                    "skint",
                    "rubbish",
                    "telly",
                    "lorry",
                    "petrol",
                    "crisps",
                    "queue",
                    "my mum",
                    "bollocks",
                    "arse",
                    "faff",
                    "tesco",
                    "danke",
                    "genau",
                    "tschüss",
                    "moin",
                    "merci",
                    "bonjour",
                    "grazie",
                    "allora",
                    "gezellig",
                    "dank je",
                    "hej",
                    "tak",
                    "skål",
                    "kurwa",
                    "vale tío",
                    "guay",
                ),
                WEAK,
            ),
        ],
        "latin_america": [
            (
                rf"{_AS_A} (?:mexican|brazilian|argentinian|colombian|chilean|peruvian|latin[ao])"
                rf"|{_IM} (?:mexican|brazilian|argentinian|colombian|chilean|peruvian)"
                r"|(?:i live in|i'm from|im from|here in|aquí en|aqui em) (?:mexico|méxico|brazil"
                r"|brasil|argentina|colombia|chile|peru|são paulo|buenos aires|bogotá)",
                STRONG,
            ),
            (
                _cues(
                    "hola",
                    "gracias",
                    "buenos días",
                    "buenos dias",
                    "buenas noches",
                    "saludos",
                    "qué onda",
                    "que onda",
                    "órale",
                    "orale",
                    "chido",
                    "güey",
                    "wey",
                    "chévere",
                    "boludo",
                    "parcero",
                    "bacán",
                    "jajaja",
                    "jajajaja",
                    "obrigado",
                    "obrigada",
                    "valeu",
                    "tudo bem",
                    "beleza",
                    "saudade",
                    "kkkk",
                    "kkkkk",
                    "rsrs",
                ),
                WEAK,
            ),
        ],
        "asia": [
            (
                rf"{_AS_A} (?:indian|japanese|korean|chinese|filipino|filipina|singaporean"
                r"|malaysian|indonesian|vietnamese|thai)"
                r"|(?:i live in|i'm from|im from|here in) (?:india|japan|korea|china|singapore"
                r"|the philippines|malaysia|indonesia|vietnam|thailand|tokyo|seoul|mumbai)",
                STRONG,
            ),
            (
                _cues(
                    "lah",
                    "leh",
                    "lor",
                    "shiok",
                    "alamak",
                    "walao",
                    "paiseh",
                    "kiasu",
                    "makan",
                    "desu",
                    "arigatou",
                    "arigato",
                    "sugoi",
                    "konnichiwa",
                    "yoroshiku",
                    "otsukare",
                    "itadakimasu",
                    "yaar",
                    "bhai",
                    "accha",
                    "arre",
                    "do the needful",
                    "prepone",
                    "lakh",
                    "crore",
                    "rupees",
                    "salamat",
                    "kuya",
                    "grabe",
                    "daebak",
                    "aigoo",
                    "aiya",
                    "aiyah",
                    "aiyoh",
                    "jiayou",
                    "xie xie",
                ),
                WEAK,
            ),
        ],
        "oceania": [
            (
                rf"{_AS_A} (?:aussie|australian|kiwi|new zealander)"
                rf"|{_IM} (?:aussie|australian|a kiwi)"
                r"|(?:i live in|i'm from|im from|here in) (?:australia|new zealand|nz|sydney"
                r"|melbourne|brisbane|perth|auckland|wellington)",
                STRONG,
            ),
            (
                _cues(
                    "arvo",
                    "reckon",
                    "heaps",
                    "brekkie",
                    "servo",
                    "bogan",
                    "g'day",
                    "fair dinkum",
                    "strewth",
                    "sweet as",
                    "chur",
                    "kia ora",
                    "jandals",
                    "togs",
                    "dunny",
                    "maccas",
                    "bottle-o",
                    "mozzie",
                    "esky",
                    "ute",
                    "tradie",
                    "straya",
                    "woolies",
                    "devo",
                ),
                WEAK,
            ),
        ],
        "africa": [
            (
                rf"{_AS_A} (?:south african|nigerian|kenyan|ghanaian|ethiopian|ugandan)"
                rf"|{_IM} (?:south african|nigerian|kenyan|ghanaian)"
                r"|(?:i live in|i'm from|im from|here in) (?:south africa|nigeria|kenya|ghana"
                r"|ethiopia|uganda|lagos|nairobi|johannesburg|joburg|cape town|accra)",
                STRONG,
            ),
            (
                _cues(
                    "lekker",
                    "braai",
                    "howzit",
                    "eish",
                    "ja nee",
                    "bru",
                    "boet",
                    "sharp sharp",
                    "bakkie",
                    "babalas",
                    "jol",
                    "yebo",
                    "abeg",
                    "wahala",
                    "oya",
                    "na wa",
                    "jollof",
                    "wetin",
                    "japa",
                    "asante",
                    "sawa",
                    "jambo",
                    "habari",
                    "pole pole",
                    "karibu",
                    "matatu",
                    "chale",
                    "naira",
                ),
                WEAK,
            ),
        ],
    },
}

#: Occupation nouns people state about themselves -> the value stored.
OCCUPATIONS: dict[str, str] = {
    "student": "student",
    "grad student": "student",
    "phd student": "student",
    "teacher": "teacher",
    "professor": "teacher",
    "lecturer": "teacher",
    "nurse": "nurse",
    "doctor": "doctor",
    "physician": "doctor",
    "surgeon": "doctor",
    "software engineer": "software developer",
    "software developer": "software developer",
    "programmer": "software developer",
    "web developer": "software developer",
    "engineer": "engineer",
    "graphic designer": "designer",
    "designer": "designer",
    "artist": "artist",
    "illustrator": "artist",
    "photographer": "photographer",
    "chef": "chef",
    "cook": "chef",
    "baker": "chef",
    "lawyer": "lawyer",
    "attorney": "lawyer",
    "solicitor": "lawyer",
    "scientist": "scientist",
    "researcher": "scientist",
    "electrician": "tradesperson",
    "plumber": "tradesperson",
    "carpenter": "tradesperson",
    "mechanic": "tradesperson",
    "accountant": "accountant",
    "barista": "barista",
}
_NOUNS = "|".join(sorted(map(re.escape, OCCUPATIONS), key=len, reverse=True))
_OCCUPATION = re.compile(
    rf"{_L}(?:{_IM}|i work as|my job as|as) an? (?:\d{{2}}[ -]?(?:years?|yr)[ -]old )?"
    r"(?:professional |full-?time |retired )?"
    rf"({_NOUNS}){_R}",
    re.IGNORECASE,
)
# "I'm 34", "I (23F)", "[f23]", "a 34 year old", "I turned 40", "25yo"
_AGE_PATTERNS = [
    re.compile(rf"{_L}{_IM} (\d{{2}})(?= ?(?:years? old|yrs? old|yo|y/o|now|and|[.,!;)]|$))", re.I),
    re.compile(
        rf"{_L}(?:{_AS_A}|{_IM} a) (\d{{2}})[ -]?(?:years?|yr|y/o|yo)(?:[ -]old)?{_R}", re.I
    ),
    re.compile(rf"{_L}i (?:just )?turned (\d{{2}}){_R}", re.I),
    re.compile(rf"{_L}(\d{{2}}) ?(?:yo|y/o|years old)(?: here| myself){_R}", re.I),
    re.compile(r"[(\[] ?(\d{2}) ?[/,]? ?(?:f|m|nb|female|male)[)\]]", re.I),
    re.compile(r"[(\[] ?(?:f|m|nb) ?[/,]? ?(\d{2}) ?[)\]]", re.I),
]
_TAG_GENDER = re.compile(
    r"[(\[] ?(?:\d{2} ?[/,]? ?(f|m|nb)|(f|m|nb) ?[/,]? ?\d{2}) ?[)\]]", re.IGNORECASE
)
_TAG_VALUE = {"f": "female", "m": "male", "nb": "nonbinary"}
# a text in Japanese, Chinese, Korean, Devanagari or Thai script; Cyrillic or Greek
_SCRIPTS = {
    "asia": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af\u0900-\u097f\u0e00-\u0e7f]"),
    "europe": re.compile(r"[\u0400-\u04ff\u0370-\u03ff]"),
}
_COMPILED = {
    f: {
        v: [(re.compile(rf"{_L}(?:{src}){_R}", re.IGNORECASE), w) for src, w in cues]
        for v, cues in values.items()
    }
    for f, values in _LEXICON.items()
}


def age_band(age: int) -> str | None:
    """The band of a stated age; None under 18 or implausibly old."""
    if age < 18 or age > 99:
        return None
    for band, top in zip(AGE_BANDS, (24, 34, 44, 54, 99), strict=True):
        if age <= top:
            return band
    return None


def demographic_cues(texts: list[str]) -> dict[str, Counter]:
    """Cue weight per field and value over all `texts` (the evidence behind each value)."""
    counts: dict[str, Counter] = {f: Counter() for f in FIELDS}
    for text in texts:
        text = text.replace("\u2019", "'")
        for region, script in _SCRIPTS.items():
            if script.search(text):
                counts["region"][region] += WEAK
        for field, values in _COMPILED.items():
            for value, cues in values.items():
                for regex, weight in cues:
                    hits = len(regex.findall(text))
                    if hits:
                        counts[field][value] += weight * hits
        for pattern in _AGE_PATTERNS:
            for age in pattern.findall(text):
                if band := age_band(int(age)):
                    counts["age"][band] += STRONG
        for a, b in _TAG_GENDER.findall(text):
            counts["gender"][_TAG_VALUE[(a or b).lower()]] += STRONG
        for noun in _OCCUPATION.findall(text):
            counts["occupation"][OCCUPATIONS[noun.lower()]] += STRONG
    return counts


def decide(counts: Counter, min_cues: int = 1, margin: int = 1) -> str | None:
    """The value with the most cue weight if it has at least `min_cues` and leads the
    runner-up by at least `margin`; None otherwise (no evidence, or a tie)."""
    ranked = counts.most_common(2)
    if not ranked or ranked[0][1] < min_cues:
        return None
    second = ranked[1][1] if len(ranked) > 1 else 0
    return ranked[0][0] if ranked[0][1] - second >= margin else None


def infer_demographics(texts: list[str], min_cues: int = 1, margin: int = 1) -> dict:
    """{age, gender, region, occupation}: each field's value where the cues in `texts`
    show it clearly, else None."""
    counts = demographic_cues(texts)
    return {f: decide(counts[f], min_cues, margin) for f in FIELDS}
