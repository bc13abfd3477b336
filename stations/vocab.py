"""Controlled vocabulary of the registry: kinds, host types, amenities, statuses, stars.

The words are data (``vocabulary.toml`` beside this module): each term has a canonical English code (stored), a
Chinese label (shown), a short word for messages, an English label, and the synonyms a union's sheet carries
(大站, 急救药箱, 正常运营 ...). The importer, the API and the exports all read them from here.

- ``canonical(field, value)``: the stored code of a word (code, label or synonym), or None;
- ``label(field, code, lang=...)``: the Chinese (or English) label of a code;
- ``closest(field, value)``: the vocabulary's word nearest a word it does not know (饮水机 → 饮水), for messages;
- ``host_type_of_name(name)``: the host type read from an organisation's name (中国石化五道口加油站 → petrol_station);
- ``stars_of(text)``: a star rating as clerks write it (五星, 3星, ★★★☆☆, 3) as 1..5, or None when unrated;
- ``seats_text(text)``: a seat count without its counting word (20个 → 20).

A kind written without a size (固定站, 驿站) is taken as ``small`` (see ``vocabulary.toml``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from collections import Counter
from functools import lru_cache
from importlib import resources
from typing import Any

FIELDS = ("kind", "host", "amenity", "status")
"""The coded fields, as ``canonical`` and ``label`` name them."""


def _load() -> dict[str, Any]:
    return tomllib.loads(resources.files(__package__ or "yizhan.stations").joinpath("vocabulary.toml")
                         .read_text(encoding="utf-8"))


_DATA = _load()


def _labels(field: str, key: str) -> dict[str, str]:
    terms: dict[str, dict[str, Any]] = _DATA[field]["terms"]
    return {code: str(t.get(key) or t["label"]) for code, t in terms.items()}


KINDS: dict[str, str] = _labels("kind", "label")
"""Kind code -> Chinese label (大型驿站), in the vocabulary's order."""
HOSTS: dict[str, str] = _labels("host", "label")
"""Host type code -> Chinese label (加油站)."""
AMENITIES: dict[str, str] = _labels("amenity", "label")
"""Amenity code -> Chinese label (饮水)."""
STATUSES: dict[str, str] = _labels("status", "label")
"""Status code -> Chinese label (运营)."""
FIELD_LABELS: dict[str, str] = dict(_DATA["fields"])
"""Registry field -> its Chinese name (kind -> 类型), for messages."""

_TERMS: dict[str, dict[str, str]] = {"kind": KINDS, "host": HOSTS, "amenity": AMENITIES, "status": STATUSES}
_SHORT: dict[str, dict[str, str]] = {f: _labels(f, "short") for f in FIELDS}
_ENGLISH: dict[str, dict[str, str]] = {f: _labels(f, "en") for f in FIELDS}
_NAME_KEYWORDS: list[tuple[str, list[str]]] = [(k["code"], list(k["words"])) for k in _DATA["host"]["name_keywords"]]
_STARS: dict[str, Any] = _DATA["stars"]
_SEAT_SUFFIXES: list[str] = list(_DATA["seats"]["suffixes"])
_CODE_LIKE = re.compile(r"[a-z]+(?:_[a-z]+)+")


def _key(value: str) -> str:
    """A word as looked up: width-folded (ＷｉＦｉ), trimmed, lower-case."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def _words(field: str) -> dict[str, str]:
    """Every word of ``field`` (codes, labels, short words, English labels, synonyms) -> its code."""
    table: dict[str, str] = {}
    for code, term in _DATA[field]["terms"].items():
        for word in (code, term["label"], term.get("short"), term.get("en"), *term.get("synonyms", [])):
            if word:
                table.setdefault(_key(word), code)
    return table


_LOOKUP: dict[str, dict[str, str]] = {f: _words(f) for f in FIELDS}


def canonical(field: str, value: str) -> str | None:
    """Return the stored code for ``value`` of vocabulary ``field`` (kind/host/amenity/status), or None.

    Accepts the code itself (any case, spaces or hyphens for underscores), its Chinese label, its short word, its
    English label, or a synonym of ``vocabulary.toml`` (full-width letters read as ASCII).
    """
    table = _LOOKUP[field]
    v = _key(value)
    return table.get(v) or table.get(v.replace(" ", "_").replace("-", "_"))


def label(field: str, code: str, *, lang: str = "zh") -> str:
    """The label of a stored code: Chinese (大型驿站) or, with ``lang="en"``, English (large station); the code
    itself when unknown."""
    return (_ENGLISH if lang == "en" else _TERMS)[field].get(code, code)


def label_en(field: str, code: str) -> str:
    """English label of a stored code (``label(field, code, lang="en")``)."""
    return label(field, code, lang="en")


def short(field: str, code: str) -> str:
    """The short Chinese word of a code, as messages suggest it (大型, 医药箱, 运营)."""
    return _SHORT[field].get(code, code)


def choices(field: str, *, lang: str = "zh") -> str:
    """The accepted words of ``field`` for a message: 大型/小型/流动, or the codes large/small/mobile."""
    return "/".join(_SHORT[field].values() if lang == "zh" else _TERMS[field])


def _similarity(a: str, b: str) -> float:
    """How alike two words are, 0..1: difflib's ratio (characters in order); for Chinese words, the better of that
    and the share of characters they have in common in any order (Dice; 站大 and 大站 share both: each Chinese
    character carries meaning, while Latin letters in common say little)."""
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    if a.isascii() or b.isascii():
        return ratio
    common = sum((Counter(a) & Counter(b)).values())
    return max(ratio, 2 * common / (len(a) + len(b)) if a or b else 0.0)


@lru_cache(maxsize=4096)
def closest(field: str, value: str, *, cutoff: float = 0.5) -> str | None:
    """The code of the vocabulary word nearest ``value`` (饮水机 → drinking_water, 大站点 → large), or None when no
    word is at least ``cutoff`` alike (``_similarity``; at least 0.7 for a word in Latin letters, whose letters in
    common say less); ties go to the word closest in length."""
    v = _key(value)
    if not v:
        return None
    if v.isascii():
        cutoff = max(cutoff, 0.7)
    best: tuple[float, int, str] | None = None
    for word, code in _LOOKUP[field].items():
        score = _similarity(v, word)
        rank = (score, -abs(len(word) - len(v)), code)
        if score >= cutoff and (best is None or rank[:2] > best[:2]):
            best = rank
    return best[2] if best else None


def looks_like_code(value: str) -> bool:
    """Whether ``value`` is written like a stored code (petrol_statoin: lower-case words joined by ``_``), so a
    host written so is a mistyped type, not an organisation's name."""
    return bool(_CODE_LIKE.fullmatch(value.strip()))


def host_type_of_name(name: str) -> str:
    """The host type of an organisation written by name: the first ``name_keywords`` entry of the vocabulary with
    a word in ``name`` (中国石化五道口加油站 → petrol_station, 海淀农商行 → bank, 成府路党群服务中心 →
    party_service_centre, 区总工会 → union_office, 物美便利店 → shop), else ``other``."""
    text = _key(name)
    for code, words in _NAME_KEYWORDS:
        if any(w in text for w in words):
            return code
    return "other"


def seats_text(text: str) -> str:
    """A seat count with its counting word taken off (20个, 8座 → 20, 8), for the number check; other text as it is."""
    t = text.strip()
    for suffix in _SEAT_SUFFIXES:
        if t.endswith(suffix) and len(t) > len(suffix):
            return t[: -len(suffix)].strip()
    return t


def stars_of(text: str) -> int | None:
    """A star rating as written (五星, 一星级, 3星, 3, 3.0, ★★★, ★★★☆☆) as 1..5; None when unrated (blank, 0,
    ☆☆☆, 未评级). Raises ValueError for anything else (6, 六星, x)."""
    t = _key(text)
    if not t or t in _STARS["unrated"]:
        return None
    filled, empty = set(_STARS["filled"]), set(_STARS["empty"])
    if set(t) <= filled | empty:
        n = sum(c in filled for c in t)
    else:
        for suffix in _STARS["suffixes"]:
            if t.endswith(suffix) and len(t) > len(suffix):
                t = t[: -len(suffix)].strip()
                break
        if t in _STARS["numerals"]:
            n = int(_STARS["numerals"][t])
        else:
            x = float(t) if re.fullmatch(r"\d+(?:\.\d*)?", t) else None
            if x is None or not x.is_integer():
                raise ValueError(f"not a star rating: {text!r}")
            n = int(x)
    if n == 0:
        return None
    if not 1 <= n <= int(_STARS["most"]):
        raise ValueError(f"not a star rating from 1 to {_STARS['most']}: {text!r}")
    return n


def vocabulary() -> dict[str, list[dict[str, Any]]]:
    """The whole vocabulary as data (for the API and documentation): per field, each term's ``code``, ``label``,
    ``short``, ``en`` and ``synonyms``."""
    return {f: [{"code": code, "label": t["label"], "short": _SHORT[f][code], "en": _ENGLISH[f][code],
                 "synonyms": list(t.get("synonyms", []))} for code, t in _DATA[f]["terms"].items()]
            for f in FIELDS}
