"""Comparable keys of personal data: names in any script to one Latin key, e-mails, schools, messy dates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

# Latin letters that look like Cyrillic ones: inside a Cyrillic word they are typing or OCR slips.
_LOOKALIKE_TO_CYRILLIC = str.maketrans("aeopcxykmthbu", "аеорсхукмтнву")
_CYRILLIC = re.compile("[а-яё]")
_LATIN = re.compile("[a-z]")
# One simple Latin spelling of Cyrillic; transliteration systems (GOST, ICAO, passport) differ in
# the letters below, so both sides are reduced to the same key by `_FOLD` afterwards.
_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "", "ы": "i", "ь": "",
    "э": "e", "ю": "iu", "я": "ia",
}
_TO_LATIN_TABLE = str.maketrans(_TO_LATIN)
# Variant spellings of transliterated Russian, longest first.
_FOLD = (
    ("shch", "sh"), ("sch", "sh"), ("kh", "h"), ("tz", "c"), ("ts", "c"), ("ya", "ia"), ("yu", "iu"),
    ("yo", "e"), ("ye", "e"), ("ie", "e"), ("iy", "i"), ("yi", "i"), ("ii", "i"), ("y", "i"), ("j", "i"),
    ("x", "ks"), ("w", "v"), ("ck", "k"), ("ph", "f"),
)
_NOT_LETTER = re.compile("[^a-z]")
_DOUBLE = re.compile(r"(.)\1+")
_PATRONYMIC = re.compile("(вич|вна|ична|инична|vich|vna|ichna)$")


def name_key(text: str | None) -> str:
    """One Latin key for a name written in Cyrillic, Latin, or a mix of look-alike letters.

    ё/е, Latin look-alikes inside Cyrillic words, case, hyphens and the usual transliteration
    variants all give the same key: "Сергеев", "Ceргеев" (Latin C), "Sergeev" and "Sergeyev" agree.
    """
    if text is None:
        return ""
    word = str(text).strip().lower().replace("ё", "е")
    if not word:
        return ""
    if _CYRILLIC.search(word):
        word = word.translate(_LOOKALIKE_TO_CYRILLIC).translate(_TO_LATIN_TABLE)
    for old, new in _FOLD:
        word = word.replace(old, new)
    word = _NOT_LETTER.sub("", word)
    return _DOUBLE.sub(r"\1", word)


def is_patronymic(text: str) -> bool:
    word = text.strip().lower().translate(_LOOKALIKE_TO_CYRILLIC) if _CYRILLIC.search(text.lower()) else text.lower()
    return bool(_PATRONYMIC.search(word))


def split_full_name(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(first token, second token, patronymic) of a one-field full name; the order of the first two is unknown.

    "Петров Иван Сергеевич", "Иван Петров" and "Ivan Petrov" all give the two name tokens and the
    patronymic when there is one; entity resolution compares the pair in both orders.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None, None, None
    tokens = [t for t in re.split(r"[\s,]+", str(text).strip()) if t]
    middle = None
    rest = []
    for token in tokens:
        if middle is None and len(tokens) > 2 and is_patronymic(token):
            middle = token
        else:
            rest.append(token)
    a = rest[0] if rest else None
    b = " ".join(rest[1:]) if len(rest) > 1 else None
    return a, b, middle


def email_key(text: str | None) -> str:
    """Lower-case address without spaces; empty when it does not look like an address."""
    if text is None:
        return ""
    value = re.sub(r"\s+", "", str(text)).lower()
    return value if re.fullmatch(r"[^@]+@[^@]+\.[a-z]{2,}", value) else ""


def school_key(text: str | None) -> str:
    """The school's number ("МБОУ СОШ № 12", "Школа №12", "школа 12" -> "12"), or the folded name."""
    if text is None:
        return ""
    value = str(text).strip().lower()
    digits = re.findall(r"\d+", value)
    if digits:
        return digits[0].lstrip("0") or "0"
    return name_key(value)


def map_unique(values: pd.Series, func: Callable[[str | None], str]) -> np.ndarray:
    """Apply `func` once per distinct value (names repeat a lot), missing values giving ""."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = np.array([func(str(u)) for u in uniques] + [""], dtype=object)
    return keys[codes]


_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%Y.%m.%d", "%d.%m.%y")


def parse_dates(values: Iterable[object]) -> tuple[np.ndarray, np.ndarray]:
    """Day numbers (int64; -1 unknown) of dates in the formats sources use, and which texts were bad.

    Accepted: ISO, DD.MM.YYYY, DD/MM/YYYY, DD-MM-YYYY, YYYY.MM.DD, DD.MM.YY (two-digit years are
    taken as 19YY above the current century's range, i.e. > 30), and Excel date cells.
    """
    series = pd.Series(list(values), dtype=object)
    text = series.map(_date_text)
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    days = np.full(len(uniques) + 1, -1, dtype=np.int64)
    bad = np.zeros(len(uniques) + 1, dtype=bool)
    for i, value in enumerate(uniques):
        day = _parse_one(str(value))
        if day is None:
            bad[i] = True
        else:
            days[i] = day
    return days[codes], bad[codes]


def _date_text(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
        return pd.Timestamp(str(value)).strftime("%Y-%m-%d")
    text = str(value).strip()
    return text or None


def _parse_one(text: str) -> int | None:
    from datetime import datetime

    text = text.split(" ")[0].split("T")[0]
    for fmt in _DATE_FORMATS:
        try:
            when = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if fmt.endswith("%y") and when.year > 2030:
            when = when.replace(year=when.year - 100)
        if when.year < 1900 or when.year > 2100:
            continue
        return (when - datetime(1970, 1, 1).date()).days
    return None
