"""Make minigpt/fonts/minigpt-cjk.otf: the Chinese characters minigpt's plots can show.

    python tools/cjk_font.py NotoSansCJKsc-Regular.otf

The plots label characters of the chat corpus (notebook 6's attention and entropy
plots), so they need a font with Chinese glyphs, and a fresh machine (or a Windows
laptop in a classroom) may have none. The full Noto Sans CJK SC is 16 MB; this
keeps only the glyphs of every character in the chatterbot corpus, in the notebooks'
sources and in the docs, plus CJK punctuation: a few hundred kilobytes, committed
with the project. Run it again when those texts gain new characters (a test lists
any character a plot could show that the font lacks).

The input: Noto Sans CJK SC Regular, version 1.004 (Adobe and Google, under the SIL
Open Font License 1.1), e.g. from the mplfonts package on PyPI
(`pip download --no-deps mplfonts==0.0.11`; the file is mplfonts/fonts/ in the wheel)
or Debian's fonts-noto-cjk. The subset is a Modified Version under the same licence
(minigpt/fonts/OFL.txt), renamed "minigpt CJK" as the licence asks of modified fonts.
Needs fontTools (pip install fonttools), a tool for this script only.
"""
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "minigpt", "fonts", "minigpt-cjk.otf")
FAMILY = "minigpt CJK"


def wanted_characters():
    """Every non-ASCII character of the corpus, the notebooks' sources, the library (its
    plot labels) and the docs."""
    from minigpt.data import load_conversations
    text = "".join(line for conv in load_conversations() for line in conv)
    for pattern in ("notebooks/src/*.py", "minigpt/*.py", "docs/**/*.md", "README.zh-CN.md"):
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            text += open(path, encoding="utf-8").read()
    punctuation = "".join(chr(c) for c in range(0x3000, 0x3040)) + \
        "".join(chr(c) for c in range(0xFF00, 0xFF66))
    return sorted({c for c in text + punctuation if ord(c) > 127})


def main(source):
    from fontTools import subset
    from fontTools.ttLib import TTFont
    chars = wanted_characters()
    font = TTFont(source)
    cmap = font.getBestCmap()
    have = [c for c in chars if ord(c) in cmap]
    options = subset.Options()
    options.name_IDs = ["*"]
    options.layout_features = ["*"]
    sub = subset.Subsetter(options)
    sub.populate(unicodes=[ord(c) for c in have])
    sub.subset(font)
    for record in font["name"].names:           # the licence: a modified font is renamed
        if record.nameID in (1, 4, 16):
            record.string = FAMILY
        elif record.nameID == 6:
            record.string = FAMILY.replace(" ", "-")
    font.save(OUT)
    print(f"wrote {OUT}: {len(have)} of {len(chars)} characters "
          f"({os.path.getsize(OUT):,} bytes); not in the source font: "
          f"{''.join(c for c in chars if ord(c) not in cmap)!r}")


if __name__ == "__main__":
    main(sys.argv[1])
