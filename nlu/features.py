"""From a text to sparse features that survive how people really type in Almaty.

- Case, punctuation and the letter ё do not matter.
- Kazakh letters typed on a Russian keyboard (а for ә, к for қ, н for ң, у for ұ and ү, о
  for ө, и for і, г for ғ, х for һ) are folded, so «кажет» and «қажет» meet.
- Words typed in Latin letters are also read transliterated ("chto takoe koronavirus" ->
  "что такое коронавирус"), so Latin-typed Russian and Kazakh reach the Cyrillic
  examples while English keeps its own words.
- Character n-grams of each word (3 to 5, with the word's edges marked) carry inflection
  (коронавирус, коронавируса, коронавирусом share most of them) and typos; word unigrams
  and bigrams carry the rest.

Features are hashed (CRC-32, stable across processes, unlike ``hash``) into 2**20
buckets, counted, and weighted by TF-IDF in the model.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter

BUCKETS = 1 << 20
_WORD = re.compile(r"[0-9a-zа-я]+")
_FOLD = str.maketrans(
    {
        "ё": "е",
        "ә": "а",
        "ғ": "г",
        "қ": "к",
        "ң": "н",
        "ө": "о",
        "ұ": "у",
        "ү": "у",
        "һ": "х",
        "і": "и",
        "ї": "и",
        "й": "и",
        "ъ": "",
        "ь": "",
    }
)
# Longest first: "shch" before "sh" before "s".
_LATIN = [
    ("shch", "щ"),
    ("sch", "щ"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("ts", "ц"),
    ("yu", "ю"),
    ("ya", "я"),
    ("yo", "е"),
    ("ye", "е"),
    ("ju", "ю"),
    ("ja", "я"),
    ("a", "а"),
    ("b", "б"),
    ("c", "к"),
    ("d", "д"),
    ("e", "е"),
    ("f", "ф"),
    ("g", "г"),
    ("h", "х"),
    ("i", "и"),
    ("j", "ж"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("q", "к"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("v", "в"),
    ("w", "в"),
    ("x", "кс"),
    ("y", "ы"),
    ("z", "з"),
]
_LATIN_RE = re.compile("|".join(re.escape(latin) for latin, _ in _LATIN))
_LATIN_MAP = dict(_LATIN)


# Latin letters that look like Cyrillic ones, inside an otherwise Cyrillic word ("берiледi",
# typed with a Latin i because the keyboard has no і).
_LOOK_ALIKE = str.maketrans("aceikmoptxyhb", "асеикмортхунв")
_CYRILLIC = re.compile("[а-я]")


def normalise(text: str) -> str:
    out = []
    for word in _WORD.findall(text.lower().translate(_FOLD)):
        if not word.isascii() and re.search("[a-z]", word) and _CYRILLIC.search(word):
            word = word.translate(_LOOK_ALIKE)
        out.append(word)
    return " ".join(out)


def transliterate(word: str) -> str:
    """A Latin-typed word in Cyrillic letters (then folded like the rest)."""
    return _LATIN_RE.sub(lambda m: _LATIN_MAP[m.group(0)], word).translate(_FOLD)


def words(text: str) -> list[list[str]]:
    """Each word with its readings: itself, and for a Latin word its transliteration."""
    out = []
    for word in normalise(text).split():
        readings = [word]
        if word.isascii() and not word.isdigit():
            readings.append(transliterate(word))
        out.append(readings)
    return out


def features(text: str) -> Counter[int]:
    """Hashed feature counts of one text."""
    counts: Counter[int] = Counter()
    tokens = words(text)
    for readings in tokens:
        for word in readings:
            counts[_bucket("w:" + word)] += 1
            marked = f"<{word}>"
            for n in (3, 4, 5):
                for i in range(len(marked) - n + 1):
                    counts[_bucket(marked[i : i + n])] += 1
    for left, right in itertools.pairwise(tokens):
        for a in left:
            for b in right:
                counts[_bucket(f"b:{a} {b}")] += 1
    return counts


def _bucket(feature: str) -> int:
    return zlib.crc32(feature.encode()) & (BUCKETS - 1)
