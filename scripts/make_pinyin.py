#!/usr/bin/env python
"""Dev-time: write coach/resources/pinyin.txt (toneless readings of GB2312 characters and every CJK
character of the corpus) from pypinyin's data (MIT). Not needed at run time; to regenerate:
`.venv/bin/pip install pypinyin && .venv/bin/python scripts/make_pinyin.py` from the checkout."""
import sys, glob, unicodedata
from pypinyin.pinyin_dict import pinyin_dict
chars = set()
for hi in range(0xB0, 0xF8):
    for lo in range(0xA1, 0xFF):
        try:
            chars.add(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
for path in glob.glob("corpus/**/*.yaml", recursive=True) + glob.glob("corpus/**/*.md", recursive=True):
    for ch in open(path, encoding="utf-8").read():
        if "\u4e00" <= ch <= "\u9fff":
            chars.add(ch)
def toneless(s):
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c)).replace("ü", "v")
lines = []
for ch in sorted(chars):
    raw = pinyin_dict.get(ord(ch))
    if not raw:
        continue
    readings = list(dict.fromkeys(toneless(r) for r in raw.split(",")))
    lines.append(f"{ch}\t{','.join(readings)}")
header = ("# Toneless pinyin readings of GB2312 characters and of every CJK character in corpus/,\n"
          "# from pypinyin's data (MIT, https://github.com/mozillazg/python-pinyin), written by\n"
          "# scripts/make_pinyin.py. Used by coach/spelling.py to read a homophone typo\n"
          "# (过你和 -> 过拟合). One character a line: the character, a tab, its readings.\n")
open("coach/resources/pinyin.txt", "w", encoding="utf-8").write(header + "\n".join(lines) + "\n")
print(len(lines))
