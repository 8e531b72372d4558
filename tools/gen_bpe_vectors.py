#!/usr/bin/env python3
"""Generates the byte-level BPE test fixtures in tests/data/bpe/.

It trains a small byte-level BPE vocabulary on TRAINING_TEXT below, then writes what the C++
tests compare against, computed here independently of the C++ code:
  tokens.tsv          TYPE<TAB>PIECE per token, in id order (types as in GGUF token_type)
  merges.txt          one merge per line, "LEFT RIGHT", highest priority first
  split_vectors.tsv   PRE<TAB>hex(text)<TAB>hex(piece),hex(piece),... : pre-tokenizer splits
  encode_vectors.tsv  PRE<TAB>PARSE_SPECIAL<TAB>hex(text)<TAB>ids : whole encodings
  unicode_classes.tsv hex(code point)<TAB>class (0 other, 1 letter, 2 number, 3 whitespace)
The split reference is the third-party `regex` module running the published split patterns;
texts are bytes, decoded with "surrogateescape" so that invalid UTF-8 bytes become characters
of class "other". The merges run in a plain quadratic loop. Deterministic: same output each run.

Usage: python3 tools/gen_bpe_vectors.py [OUTPUT_DIR]
"""
import collections
import os
import random
import sys
import unicodedata

import regex

PATTERNS = {
    "gpt-2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama-bpe": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
COMPILED = {name: regex.compile(pattern) for name, pattern in PATTERNS.items()}

# Written for these tests: plain sentences with the features the pre-tokenizers treat apart.
TRAINING_TEXT = """The store keeps the key and value cache of each context in chunks, and the device
loads them while it computes the rest. It's fast when the network is fast; when it isn't, we'll
compute more and stream less. They've measured 1200 requests at 48 Mbit/s, and 3 of them timed out.
Don't worry: the planner re-plans every 250 ms. I'm sure you'd like the numbers: 12, 345, 6789.
THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. The quick brown fox jumps over the lazy dog again.
Café, naïve, résumé, façade, jalapeño and Ångström are words with accents.
東京は日本の首都です。 北京是中国的首都。 서울은 한국의 수도입니다.
Emoji: 🙂 👍🏽 🚀 and the family 👨‍👩‍👧 are several code points each.
    Indented lines, tabs	and trailing spaces   
are whitespace runs.

Two blank lines above; the end.
"""

SPECIALS = [
    ("<|endoftext|>", 3),
    ("<|im_start|>", 3),
    ("<|im_end|>", 3),
    ("<|begin_of_text|>", 3),
    ("<|eot_id|>", 3),
    ("<tool>", 4),  # user-defined: always matched
]

# Whole words added as tokens that no merge reaches: Llama 3 takes them whole (ignore_merges).
UNREACHABLE_WORDS = ["Ġquokka", "Ġzyzzyva"]

N_MERGES = 400


def byte_alphabet():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping = {}
    extra = 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


BYTE_CHAR = byte_alphabet()


def to_str(data):
    return data.decode("utf-8", errors="surrogateescape")


def to_bytes(text):
    return text.encode("utf-8", errors="surrogateescape")


def split(pre, data):
    return [to_bytes(piece) for piece in COMPILED[pre].findall(to_str(data))]


def mapped(data):
    return "".join(BYTE_CHAR[b] for b in data)


def train():
    words = collections.Counter(mapped(p) for p in split("gpt-2", TRAINING_TEXT.encode()))
    corpus = {word: list(word) for word in words}
    merges = []
    for _ in range(N_MERGES):
        pairs = collections.Counter()
        for word, symbols in corpus.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += words[word]
        if not pairs:
            break
        # Most frequent first; ties by the pair's text, so the result does not depend on hashing.
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for word, symbols in corpus.items():
            out = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            corpus[word] = out
    return merges


def build_vocab(merges):
    tokens = [(SPECIALS[0][0], SPECIALS[0][1])]
    tokens += [(BYTE_CHAR[b], 1) for b in range(256)]
    seen = {piece for piece, _ in tokens}
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append((a + b, 1))
    for word in UNREACHABLE_WORDS:
        tokens.append((word, 1))
    tokens += [(text, kind) for text, kind in SPECIALS[1:]]
    return tokens


def bpe_word(word, ranks):
    symbols = list(word)
    while len(symbols) > 1:
        best = None
        for i in range(len(symbols) - 1):
            rank = ranks.get((symbols[i], symbols[i + 1]))
            if rank is not None and (best is None or rank < best):
                best = rank
        if best is None:
            break
        out = []
        i = 0
        while i < len(symbols):
            if i + 1 < len(symbols) and ranks.get((symbols[i], symbols[i + 1])) == best:
                out.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


def encode(pre, parse_special, data, tokens, ranks):
    ids = {piece: i for i, (piece, _) in enumerate(tokens)}
    specials = [(text, kind) for text, kind in SPECIALS if parse_special or kind == 4]
    specials.sort(key=lambda s: -len(s[0]))
    parts = [data]
    if specials:
        alternation = "|".join(regex.escape(text) for text, _ in specials)
        parts = regex.split(("(" + alternation + ")").encode(), data)
    out = []
    for k, part in enumerate(parts):
        if k % 2 == 1:
            out.append(ids[part.decode()])
            continue
        for piece in split(pre, part):
            word = mapped(piece)
            if pre == "llama-bpe" and word in ids:
                out.append(ids[word])
                continue
            out.extend(ids[symbol] for symbol in bpe_word(word, ranks))
    return out


FIXED_TEXTS = [
    b"Hello world",
    b" Hello world",
    b"hello  world",
    b"It's, I'll, you'd, we've, they're, I'm, can't",
    b"IT'S I'LL YOU'D WE'VE THEY'RE I'M CAN'T",
    "it'ſ long s".encode(),
    b"'s at the start and at the end's",
    b"' lone apostrophe '",
    b"1 12 123 1234 12345 123456 1234567",
    b"3.14159 and 2,718 and 10^9",
    "Arabic-Indic ٠١٢٣٤٥ and Roman Ⅻ and ½".encode(),
    b"   leading spaces",
    b"trailing spaces   ",
    b"a\tb\t\tc",
    b"line one\nline two\n\nline four\r\nline five\r\n",
    b"\n\n\n",
    b"  \n  \n  x",
    b"x \n y",
    b"!!! ??? ... ---",
    b"(parenthesis) [brackets] {braces} <angles>",
    b"foo.bar(baz)\n    return x+1;\n",
    "東京は日本の首都です。".encode(),
    "北京是中国的首都 and 서울".encode(),
    "🙂 👍🏽🚀 👨‍👩‍👧 emoji".encode(),
    "Café naïve résumé façade jalapeño Ångström".encode(),
    "e\u0301 combining accent and \u00a0no-break\u3000ideographic space".encode(),
    "\u2028line separator\u2029para\u0085nel".encode(),
    b"invalid \xff\xfe bytes",
    b"truncated \xe4\xb8 sequence",
    b"overlong \xc0\xaf and surrogate \xed\xa0\x80 and high \xf4\x90\x80\x80",
    b"lone continuation \x80\x80 x",
    b"\xe4\xb8\xad\xe6",
    b" \xff",
    b"The quick brown fox jumps over the lazy dog.",
    b"a quokka and a zyzzyva",
    b"",
    b" ",
    b"x",
]

SPECIAL_TEXTS = [
    b"<|endoftext|>Hello",
    b"Hello<|endoftext|>",
    b"Hello <|endoftext|> world",
    b"<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    b"<|begin_of_text|><|begin_of_text|>twice",
    b"<|im_start|><|im_end|>",
    b"<|im_startx <|endoftext| partial",
    b"call <tool> now<tool>",
    b"<|eot_id|>",
]


def random_texts(rng, count):
    alphabet = (
        list("abcXYZ ' sStTmMdDlLrReEvV") + list("0123456789") + list(" \t\n\r") + list(".,!?-_()<>|") +
        ["é", "ß", "ſ", "東", "京", "한", "🙂", "\u0301", "\u00a0", "\u3000", "٣", "Ⅻ", "\u2028", "\u0085"]
    )
    texts = []
    for _ in range(count):
        length = rng.randint(1, 24)
        data = "".join(rng.choice(alphabet) for _ in range(length)).encode()
        if rng.random() < 0.2:
            data += bytes([rng.choice([0x80, 0xC3, 0xE4, 0xFF])])
        texts.append(data)
    return texts


def classify(cp):
    ch = chr(cp)
    if regex.match(r"\s", ch):
        return 3
    if regex.match(r"\p{L}", ch):
        return 1
    if regex.match(r"\p{N}", ch):
        return 2
    return 0


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/bpe"
    os.makedirs(out_dir, exist_ok=True)
    merges = train()
    tokens = build_vocab(merges)
    ranks = {pair: rank for rank, pair in reversed(list(enumerate(merges)))}

    with open(os.path.join(out_dir, "tokens.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for piece, kind in tokens:
            f.write("%d\t%s\n" % (kind, piece))
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        for a, b in merges:
            f.write("%s %s\n" % (a, b))

    rng = random.Random(20261205)
    texts = FIXED_TEXTS + [TRAINING_TEXT.encode()] + random_texts(rng, 300)
    with open(os.path.join(out_dir, "split_vectors.tsv"), "w", encoding="ascii", newline="\n") as f:
        for pre in PATTERNS:
            for data in texts:
                pieces = split(pre, data)
                assert b"".join(pieces) == data
                f.write("%s\t%s\t%s\n" % (pre, data.hex(), ",".join(p.hex() for p in pieces)))
    with open(os.path.join(out_dir, "encode_vectors.tsv"), "w", encoding="ascii", newline="\n") as f:
        for pre in PATTERNS:
            for data in FIXED_TEXTS + [TRAINING_TEXT.encode()] + SPECIAL_TEXTS:
                for parse_special in (0, 1):
                    ids = encode(pre, parse_special, data, tokens, ranks)
                    f.write("%s\t%d\t%s\t%s\n" % (pre, parse_special, data.hex(), " ".join(map(str, ids))))

    with open(os.path.join(out_dir, "unicode_classes.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write("# regex %s, Python unicodedata %s\n" % (regex.__version__, unicodedata.unidata_version))
        for cp in range(0x110000):
            if unicodedata.category(chr(cp)) == "Cn" or 0xD800 <= cp <= 0xDFFF:
                continue  # unassigned in this Unicode version, or a surrogate
            if cp < 0x3400 or cp % 101 == 0:
                f.write("%x\t%d\n" % (cp, classify(cp)))
    print("%d tokens, %d merges written to %s" % (len(tokens), len(merges), out_dir))


if __name__ == "__main__":
    main()
