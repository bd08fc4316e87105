"""The textbook's BERT preprocessing in plain Python, as the speed reference for
`npm run bench:data` (Dive into Deep Learning, "The Dataset for Pretraining BERT"), with the
rules tsbert implements: paragraphs of >= 2 sentences, lowercased; a vocabulary of words seen
>= 5 times (ties by code point, reserved tokens first); NSP pairs with probability 1/2 and
the length filter; 15% MLM masking (80% <mask>, 10% kept, 10% a random word); padding.

Usage: python3 bench/reference/preprocess.py PATH [MAX_LEN]
Prints one JSON line: paragraphs, vocab size, examples and the seconds each stage took.
"""
import collections
import json
import random
import sys
import time

RESERVED = ['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']


def read_wiki(path):
    with open(path, 'r', encoding='utf-8') as f:
        lines = f.read().split('\n')
    paragraphs = [line.strip().lower().split(' . ') for line in lines if len(line.split(' . ')) >= 2]
    random.shuffle(paragraphs)
    return [[sentence.split() for sentence in p] for p in paragraphs]


def build_vocab(sentences, min_freq=5):
    counter = collections.Counter(w for s in sentences for w in s)
    words = sorted((w for w, c in counter.items() if c >= min_freq and w not in RESERVED),
                   key=lambda w: (-counter[w], w))
    idx_to_token = RESERVED + words
    return idx_to_token, {t: i for i, t in enumerate(idx_to_token)}


def nsp_pairs(paragraphs, max_len):
    examples = []
    for paragraph in paragraphs:
        for i in range(len(paragraph) - 1):
            a, b = paragraph[i], paragraph[i + 1]
            is_next = random.random() < 0.5
            if not is_next:
                b = random.choice(random.choice(paragraphs))
            if len(a) + len(b) + 3 > max_len:
                continue
            tokens = ['<cls>'] + a + ['<sep>'] + b + ['<sep>']
            segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
            examples.append((tokens, segments, is_next))
    return examples


def mask(tokens, vocab_words):
    candidates = [i for i, t in enumerate(tokens) if t not in ('<cls>', '<sep>')]
    random.shuffle(candidates)
    num_preds = max(1, round(len(tokens) * 0.15))
    chosen = sorted(candidates[:num_preds])
    masked = list(tokens)
    for i in chosen:
        if random.random() < 0.8:
            masked[i] = '<mask>'
        elif random.random() >= 0.5:
            masked[i] = random.choice(vocab_words)
    return masked, chosen, [tokens[i] for i in chosen]


def pad(examples, max_len, token_to_idx):
    max_preds = round(max_len * 0.15)
    out = []
    for tokens, segments, positions, labels, is_next in examples:
        ids = [token_to_idx.get(t, 0) for t in tokens]
        out.append((ids + [token_to_idx['<pad>']] * (max_len - len(ids)),
                    segments + [0] * (max_len - len(segments)),
                    len(ids),
                    positions + [0] * (max_preds - len(positions)),
                    [1.0] * len(labels) + [0.0] * (max_preds - len(labels)),
                    [token_to_idx.get(t, 0) for t in labels] + [0] * (max_preds - len(labels)),
                    int(is_next)))
    return out


def main():
    path, max_len = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64
    random.seed(0)
    t0 = time.perf_counter()
    paragraphs = read_wiki(path)
    t1 = time.perf_counter()
    idx_to_token, token_to_idx = build_vocab([s for p in paragraphs for s in p])
    t2 = time.perf_counter()
    # the textbook maps words outside the vocabulary to <unk> before pairing
    paragraphs = [[[w if w in token_to_idx else '<unk>' for w in s] for s in p] for p in paragraphs]
    pairs = nsp_pairs(paragraphs, max_len)
    t3 = time.perf_counter()
    words = idx_to_token[len(RESERVED):]
    masked = [mask(tokens, words) + (segments, is_next) for tokens, segments, is_next in pairs]
    examples = pad([(m, seg, pos, lab, nxt) for m, pos, lab, seg, nxt in masked], max_len, token_to_idx)
    t4 = time.perf_counter()
    print(json.dumps({
        'paragraphs': len(paragraphs), 'vocab': len(idx_to_token), 'examples': len(examples),
        'seconds': {'read': t1 - t0, 'vocab': t2 - t1, 'nsp': t3 - t2, 'mask_pad': t4 - t3, 'total': t4 - t0},
    }))


if __name__ == '__main__':
    main()
