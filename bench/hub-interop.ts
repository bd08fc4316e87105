/**
 * `npm run bench:hub`: the Hugging Face cache shared with Python, checked with Python's own
 * `huggingface_hub` and sentence-transformers (bench/.venv) against the local Hub server of the
 * tests (__test__/api/hub-server.ts): Python downloads a model, tsbert loads it offline without
 * a request; tsbert downloads one, Python (HF_HUB_OFFLINE=1) loads it, sentence-transformers
 * with its modules. Exits non-zero when either side fails.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { outDir, venvPython } from './support.js';

const run = promisify(execFile);
const python = venvPython();

import { repoFromFolder, startHub } from '../__test__/api/hub-server.js';
import { BertModel, embed } from '../src/index.js';

const repo = await repoFromFolder(join(import.meta.dirname, '../crates/tsbert-core/tests/fixtures/hf/bare'), 'py', {
  'modules.json': JSON.stringify([
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
  ]),
  '1_Pooling/config.json': '{"pooling_mode": "max", "embedding_dimension": 32}',
});
const hub = await startHub(new Map([['py-org/tiny', repo]]));
const cache = join(outDir('hub'), 'python-cache');
await rm(cache, { recursive: true, force: true });
const { stdout: out } = await run(
  python,
  [
    '-c',
    `
from huggingface_hub import snapshot_download
print(snapshot_download('py-org/tiny', cache_dir='${cache}'))
`,
  ],
  { env: { ...process.env, HF_ENDPOINT: hub.url, HF_HUB_DISABLE_XET: '1' }, encoding: 'utf8' },
);
console.log(`Python's snapshot_download: ${out.trim()}`);
hub.requests.length = 0;
const m = await BertModel.load('py-org/tiny', { hub: { cacheDir: cache, offline: true } });
const shape = (await embed(m, ['a dog'])).shape;
console.log(
  `tsbert, offline, from Python's cache: pooling ${m.sentenceSettings?.pooling}, vectors ${shape}, ${hub.requests.length} requests`,
);
if (hub.requests.length !== 0 || m.sentenceSettings?.pooling[0] !== 'max') process.exitCode = 1;
// and the other way: tsbert downloads, python loads offline
const cache2 = join(outDir('hub'), 'tsbert-cache');
await rm(cache2, { recursive: true, force: true });
await BertModel.load('py-org/tiny', { hub: { cacheDir: cache2, endpoint: hub.url } });
const { stdout: out2 } = await run(
  python,
  [
    '-c',
    `
from huggingface_hub import snapshot_download
from sentence_transformers import SentenceTransformer
p = snapshot_download('py-org/tiny', cache_dir='${cache2}')
print(p, SentenceTransformer('py-org/tiny', cache_folder='${cache2}', device='cpu'))
`,
  ],
  { env: { ...process.env, HF_HUB_OFFLINE: '1' }, encoding: 'utf8' },
);
console.log(`Python, offline, from tsbert's cache: ${out2.trim()}`);
await hub.close();
