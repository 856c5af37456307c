#!/usr/bin/python3
"""Goldens for src/engine/tok (tests/goldens/engine/tok/tokens.json).

Writes our synthetic CLIP vocabularies with $BUILD/tools/mkclipvocab (the C writer,
tests/unit/support/clipvocab.c), tokenizes a prompt corpus with tok_clip.py (a port of
openai/CLIP simple_tokenizer.py using the `regex` module; ftfy omitted on both sides) and
records, per prompt: the raw ids, the SD1 sequence (HF CLIPTokenizer, padded with EOS) and the
SD2 sequence (open_clip.tokenize, padded with 0). The FNV-1a 64 of both files is recorded so
the C test notices when the writer changes.

Run: BUILD=build /usr/bin/python3 tests/reference/gen_tokenizer.py   (needs $BUILD/tools/mkclipvocab)
"""
import html
import html.entities
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tok_clip import (SimpleTokenizer, basic_clean, hf_sd1_ids, open_clip_ids,  # noqa: E402
                      whitespace_clean)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/goldens/engine/tok/tokens.json")
VOCABS = [("full", 0), ("small", 7)]

LONG = ("a highly detailed digital painting of an ancient castle on a cliff above a stormy sea, "
        "lightning in the dark clouds, waves crashing on the rocks, a lone knight on horseback "
        "riding towards the gate, dramatic lighting, volumetric fog, epic composition, concept "
        "art by several famous artists, trending on artstation, 8k resolution, masterpiece, best "
        "quality, sharp focus, intricate details, warm and cold colors, cinematic")

PROMPTS = [
    "a photo of a cat",
    "A Photo Of A CAT, HIGHLY Detailed",
    "",
    "   ",
    "\t\n  multiple   spaces\tand\ttabs\n",
    "digits 1234567890 and 3.14159, 2023-10-05 12:30",
    "punctuation!!! ??? ... --- ,,, ;; :: \"quoted\" 'single' `back` ~tilde~ @#$%^&*",
    "it's don't you're we've i'm you'll he'd THEY'RE IT'S 'S 'T x'sy 's's's",
    "café naïve crème brûlée Ångström façade Über straße ẞ ß señor",
    "emoji 🐱🐶 ❤️ 👍🏽 👨‍👩‍👧 🇯🇵 ✨🎨",
    "CJK 東京タワー 日本語のテキスト 한국어 文字",
    "RTL مرحبا بالعالم שלום עולם",
    "Greek ΟΔΥΣΣΕΥΣ ΣΑΣ Σ ΑΣ. ΑΣ'Σ ὈΔΥΣΣΕΎΣ Σ̈Σ",
    "İstanbul İİ TÜRKİYE",
    "fish &amp; chips &lt;3 &gt; &quot;hi&quot; &apos;x&apos; &#39;q&#39; &nbsp;x",
    "&#65;&#x42;&#X43; &amp;amp; &ampfoo &notin; &notit; &copy2023 &unknown; & alone &#; &#x;",
    "&#0; &#128; &#x9f; &#x110000; &#xD800; &#1; &#13; &#xfffe; &#99999999999999999999; &AMP;",
    "&amp;lt;b&amp;gt; double &amp;#39; &#38;amp; &lt &gtx &NotNestedGreaterGreater;",
    LONG,
    " ".join(["hello world"] * 40),
    "a cat BREAK a dog BREAK",
    "(masterpiece:1.2), ((best quality)), [blurry:0.5], {blue|red}, <lora:detail_v2:0.7>, cat\\(x\\)",
    "embedding:neg_v1, (worst quality, low quality:1.4), nsfw",
    "<|startoftext|>hello<|endoftext|> <|ENDOFTEXT|> <|startoftext |> <|endoftext",
    "ctrl\x0bvt\x0cff\x1cfs\x1f us\x85nel\u00a0nbsp\u2003em\u3000ideo\u180emvs\u200bzwsp",
    "\u3000\u2003\n\x1c",
    "U+0345 \u0345 after\u0345 \u0345\u0345",
    "nul a\x00b \x00",
    "combining e\u0301 vs \u00e9, zalgo t\u0337\u0322e\u0338s\u0335t",
    "math 𝕳𝖊𝖑𝖑𝖔 ½ ² ³ Ⅷ ① ٣ ௫ ๓ 𝟘𝟙",
    "ligature ﬁ ﬂ Kelvin \u212a Ohm \u2126 Angstrom \u212b",
    "pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
    "a" * 300,
    "ab" * 120,
    "aaab" * 30 + " " + "zzz" * 20,
    "foo</w>bar </w> <w>",
    "newline\r\nwindows\rmac",
    "the quick brown fox jumps over the lazy dog " * 3,
    "photograph, 8k, uhd, dslr, soft lighting, high quality, film grain, Fujifilm XT3",
    "private use \ue000 \U000f0000 unassigned \u0378 noncharacter \ufdd0",
    "mixed ÀÉÎÕÜ àéîõü ĀĒĪŌŪ ǅǈǋ ǲ ΆΈΉ Ѐ Ѝ Ա Ⴀ Ꭰ ᲐᲑ ℌ ℍ",
]


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def text_checks():
    """Checks of the text cleaning alone: every prompt's cleaned text, every HTML5 entity
    (alone, followed by a letter, and doubly escaped) through html.unescape, and a hash of
    str.lower() over all code points."""
    clean = [whitespace_clean(basic_clean(p)).lower() for p in PROMPTS]
    names = sorted(html.entities.html5)
    ent_in = " ".join("&%s &%sz &amp;%s" % (n, n, n) for n in names)
    lower = "".join(chr(c).lower() for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    return {"prompts": PROMPTS, "clean": clean, "entities_in": ent_in,
            "entities_out": html.unescape(html.unescape(ent_in)),
            "lower_fnv1a64": fnv1a64(lower.encode("utf-8"))}


def main():
    build = os.environ.get("BUILD", "build")
    tool = os.path.join(ROOT, build, "tools", "mkclipvocab")
    if not os.access(tool, os.X_OK):
        sys.exit(f"gen_tokenizer: {tool} not found; build it first (make BUILD={build} tools)")
    result = {"format": "isd-tok-goldens-1", "vocabs": [], "text": text_checks()}
    with tempfile.TemporaryDirectory() as tmp:
        for size, seed in VOCABS:
            d = os.path.join(tmp, f"{size}-{seed}")
            subprocess.run([tool, d, size, str(seed)], check=True)
            vocab, merges = os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")
            tok = SimpleTokenizer(vocab, merges)
            with open(vocab, "rb") as f:
                vh = fnv1a64(f.read())
            with open(merges, "rb") as f:
                mh = fnv1a64(f.read())
            cases = []
            for p in PROMPTS:
                cases.append({"prompt": p, "raw": tok.encode(p), "sd1": hf_sd1_ids(tok, p),
                              "sd2": open_clip_ids(tok, p)})
            result["vocabs"].append({"size": size, "seed": seed, "vocab_size": len(tok.encoder),
                                     "bos": tok.sot, "eos": tok.eot, "vocab_fnv1a64": vh,
                                     "merges_fnv1a64": mh, "cases": cases})
    with open(OUT, "w", encoding="ascii") as f:
        json.dump(result, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    n = sum(len(v["cases"]) for v in result["vocabs"])
    print(f"gen_tokenizer: wrote {OUT} ({n} cases)")


if __name__ == "__main__":
    main()
