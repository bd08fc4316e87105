"""The textbook's BERT preprocessing in plain Python, the speed reference of `npm run bench:data`.

Dive into Deep Learning, "The Dataset for Pretraining BERT" (`_read_wiki`,
`_get_nsp_data_from_paragraph`, `_get_mlm_data_from_tokens`, `_pad_bert_inputs`), with the
rules tsbert's data pipeline implements:

- paragraphs: lines that split on ' . ' into >= 2 sentences, stripped, lowercased, shuffled;
  words split on runs of whitespace (`str.split()`, as `d2l.tokenize(..., 'word')`);
- vocabulary: '<unk>', '<pad>', '<mask>', '<cls>', '<sep>', then the words seen >= 5 times,
  most frequent first, equal counts in code-point order;
- NSP: each consecutive pair kept with probability 1/2, else b is a random sentence of a
  random paragraph; pairs with len(a) + len(b) + 3 > max_len skipped;
- MLM: max(1, round(0.15 * len(tokens))) positions that are not '<cls>'/'<sep>'; each becomes
  '<mask>' (0.8), stays (0.1) or becomes a random word (0.1; a word, not a reserved token);
- padding to max_len and round(0.15 * max_len) predictions.

Two differences from the book's code, both only making this faster: no `torch.tensor` per
example (plain lists), and the `Vocab` class's recursive `__getitem__` replaced by dict lookups.

Usage: python3 bench/reference/preprocess.py PATH [MAX_LEN]
Prints one JSON line: paragraphs, vocabulary size, examples and the seconds of each stage.
"""
import collections
import json
import random
import sys
import time

RESERVED = ['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']


def read_wiki(path):
    with open(path, 'r', encoding='utf-8') as f:
        lines = f.readlines()
    paragraphs = [line.strip().lower().split(' . ') for line in lines if len(line.split(' . ')) >= 2]
    random.shuffle(paragraphs)
    return [[sentence.split() for sentence in paragraph] for paragraph in paragraphs]


def build_vocab(sentences, min_freq=5):
    counter = collections.Counter(word for sentence in sentences for word in sentence)
    words = sorted((w for w, c in counter.items() if c >= min_freq and w not in RESERVED),
                   key=lambda w: (-counter[w], w))
    idx_to_token = RESERVED + words
    return idx_to_token, {token: i for i, token in enumerate(idx_to_token)}


def get_next_sentence(sentence, next_sentence, paragraphs):
    if random.random() < 0.5:
        is_next = True
    else:
        next_sentence = random.choice(random.choice(paragraphs))
        is_next = False
    return sentence, next_sentence, is_next


def get_nsp_data_from_paragraph(paragraph, paragraphs, max_len):
    nsp_data = []
    for i in range(len(paragraph) - 1):
        tokens_a, tokens_b, is_next = get_next_sentence(paragraph[i], paragraph[i + 1], paragraphs)
        if len(tokens_a) + len(tokens_b) + 3 > max_len:
            continue
        tokens = ['<cls>'] + tokens_a + ['<sep>'] + tokens_b + ['<sep>']
        segments = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
        nsp_data.append((tokens, segments, is_next))
    return nsp_data


def replace_mlm_tokens(tokens, candidate_pred_positions, num_mlm_preds, words):
    mlm_input_tokens = list(tokens)
    pred_positions_and_labels = []
    random.shuffle(candidate_pred_positions)
    for position in candidate_pred_positions:
        if len(pred_positions_and_labels) >= num_mlm_preds:
            break
        if random.random() < 0.8:
            masked_token = '<mask>'
        elif random.random() < 0.5:
            masked_token = tokens[position]
        else:
            masked_token = random.choice(words)
        mlm_input_tokens[position] = masked_token
        pred_positions_and_labels.append((position, tokens[position]))
    return mlm_input_tokens, pred_positions_and_labels


def get_mlm_data_from_tokens(tokens, words, token_to_idx):
    candidate_pred_positions = [i for i, token in enumerate(tokens) if token not in ('<cls>', '<sep>')]
    num_mlm_preds = max(1, round(len(tokens) * 0.15))
    mlm_input_tokens, pred_positions_and_labels = replace_mlm_tokens(tokens, candidate_pred_positions, num_mlm_preds, words)
    pred_positions_and_labels = sorted(pred_positions_and_labels, key=lambda x: x[0])
    pred_positions = [v[0] for v in pred_positions_and_labels]
    labels = [token_to_idx.get(v[1], 0) for v in pred_positions_and_labels]
    return [token_to_idx.get(t, 0) for t in mlm_input_tokens], pred_positions, labels


def pad_bert_inputs(examples, max_len, token_to_idx):
    max_num_mlm_preds = round(max_len * 0.15)
    pad = token_to_idx['<pad>']
    tokens, segments, valid_lens, positions, weights, labels, nsp_labels = [], [], [], [], [], [], []
    for token_ids, pred_positions, mlm_labels, segs, is_next in examples:
        tokens.append(token_ids + [pad] * (max_len - len(token_ids)))
        segments.append(segs + [0] * (max_len - len(segs)))
        valid_lens.append(len(token_ids))
        positions.append(pred_positions + [0] * (max_num_mlm_preds - len(pred_positions)))
        weights.append([1.0] * len(mlm_labels) + [0.0] * (max_num_mlm_preds - len(pred_positions)))
        labels.append(mlm_labels + [0] * (max_num_mlm_preds - len(mlm_labels)))
        nsp_labels.append(1 if is_next else 0)
    return tokens, segments, valid_lens, positions, weights, labels, nsp_labels


def main():
    path = sys.argv[1]
    max_len = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    random.seed(0)
    t0 = time.perf_counter()
    paragraphs = read_wiki(path)
    t1 = time.perf_counter()
    idx_to_token, token_to_idx = build_vocab([sentence for paragraph in paragraphs for sentence in paragraph])
    t2 = time.perf_counter()
    examples = []
    for paragraph in paragraphs:
        examples.extend(get_nsp_data_from_paragraph(paragraph, paragraphs, max_len))
    t3 = time.perf_counter()
    words = idx_to_token[len(RESERVED):]
    examples = [get_mlm_data_from_tokens(tokens, words, token_to_idx) + (segments, is_next)
                for tokens, segments, is_next in examples]
    t4 = time.perf_counter()
    padded = pad_bert_inputs(examples, max_len, token_to_idx)
    t5 = time.perf_counter()
    print(json.dumps({
        'paragraphs': len(paragraphs), 'vocab': len(idx_to_token), 'examples': len(padded[0]),
        'seconds': {'read': t1 - t0, 'vocab': t2 - t1, 'nsp': t3 - t2, 'mlm': t4 - t3, 'pad': t5 - t4, 'total': t5 - t0},
    }))


if __name__ == '__main__':
    main()
