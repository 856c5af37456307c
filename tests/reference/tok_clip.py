"""A Python port of openai/CLIP clip/simple_tokenizer.py (MIT), without ftfy, reading HF-style
tokenizer files (vocab.json + merges.txt, as HF's slow CLIPTokenizer does). Used by
gen_tokenizer.py as the independent reference for src/engine/tok.

Differences from the original, all deliberate: ftfy.fix_text is not applied (not packaged in
Debian; the C tokenizer omits it too), and the vocabulary comes from vocab.json/merges.txt
instead of bpe_simple_vocab_16e6.txt.gz (HF's loading: merges[1 : 49152 - 256 - 2 + 1]).
"""
import html
import json

import regex as re


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


def basic_clean(text):
    # text = ftfy.fix_text(text)   -- omitted
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r"\s+", " ", text)
    text = text.strip()
    return text


class SimpleTokenizer:
    def __init__(self, vocab_path, merges_path):
        self.byte_encoder = bytes_to_unicode()
        with open(merges_path, encoding="utf-8") as f:
            merges = f.read().strip().split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(merge.split()) for merge in merges]
        with open(vocab_path, encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = re.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            re.IGNORECASE)
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)

        if not pairs:
            return token + "</w>"

        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break

                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            new_word = tuple(new_word)
            word = new_word
            if len(word) == 1:
                break
            else:
                pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(" "))
        return bpe_tokens


def hf_sd1_ids(tok, text, max_length=77):
    """HF CLIPTokenizer(text, padding="max_length", max_length=77, truncation=True) for SD1:
    BOS + tokens (truncated to leave room for EOS) + EOS, padded with the pad token, which is
    <|endoftext|> in SD1's tokenizer_config."""
    ids = tok.encode(text)[:max_length - 2]
    ids = [tok.sot] + ids + [tok.eot]
    return ids + [tok.eot] * (max_length - len(ids))


def open_clip_ids(tok, text, context_length=77):
    """open_clip.tokenize (SD2's FrozenOpenCLIPEmbedder): zero-padded, truncated with EOT last."""
    tokens = [tok.sot] + tok.encode(text) + [tok.eot]
    if len(tokens) > context_length:
        tokens = tokens[:context_length]
        tokens[-1] = tok.eot
    return tokens + [0] * (context_length - len(tokens))
