/**
 * A local server in the Hugging Face Hub's URL layout, for the tests of models by Hub id
 * (`HF_ENDPOINT` / `hub.endpoint` pointed at it): `GET /api/models/ID/revision/REV` (the
 * commit), `GET /api/models/ID/tree/REV?recursive=true` (the files with their git blob ids and
 * LFS hashes), `GET /ID/resolve/REV/PATH` (the bytes, ranges too). Faults on demand: a gated
 * repository (401 without the right token), a connection dropped halfway through a file, a
 * file whose bytes do not match its listed hash.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** A repository the server holds. */
export interface Repo {
  /** Its files by path. */
  files: Map<string, Buffer>;
  /** The commit `main` points at. */
  commit: string;
  /** Requests without `Authorization: Bearer TOKEN` get 401. */
  gatedToken?: string;
  /** Downloads of this path send half the body, then drop the connection. */
  dropPath?: string;
  /** Downloads of this path send other bytes (as many) than the listing's hashes describe. */
  corruptPath?: string;
}

/** The files of `dir` (recursively) as a repository's, with a commit id made from `seed`. */
export async function repoFromFolder(dir: string, seed: string, extra: Record<string, string> = {}): Promise<Repo> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name).slice(dir.length + 1);
    files.set(path, await readFile(join(dir, path)));
  }
  for (const [path, text] of Object.entries(extra)) files.set(path, Buffer.from(text));
  return { files, commit: createHash('sha1').update(seed).digest('hex') };
}

const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const isLfs = (path: string) => path.endsWith('.safetensors');

/** The server: `url` for `HF_ENDPOINT`, `requests` seen (method and path), `close()`. */
export async function startHub(repos: Map<string, Repo>) {
  const requests: string[] = [];
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    requests.push(`${req.method} ${url.pathname}`);
    const api = /^\/api\/models\/(.+?)\/(revision|tree)\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const id = decodeURIComponent((api ?? resolve)?.[1] ?? '');
    const repo = repos.get(id);
    if (!repo) return json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepositoryNotFound' });
    if (repo.gatedToken && req.headers.authorization !== `Bearer ${repo.gatedToken}`) {
      return json(
        res,
        401,
        { error: `Access to model ${id} is restricted. You must have access to it and be authenticated to access it.` },
        { 'X-Error-Code': 'GatedRepo' },
      );
    }
    if (api?.[2] === 'revision') {
      return json(res, 200, {
        _id: id,
        id,
        sha: repo.commit,
        private: false,
        gated: repo.gatedToken ? 'manual' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z',
      });
    }
    if (api?.[2] === 'tree') {
      return json(
        res,
        200,
        [...repo.files].map(([path, b]) => ({
          type: 'file',
          path,
          size: b.length,
          oid: gitOid(b),
          ...(isLfs(path) ? { lfs: { oid: sha256(b), size: b.length, pointerSize: 130 } } : {}),
        })),
      );
    }
    const path = resolve ? decodeURIComponent(resolve[3]) : '';
    const body = repo.files.get(path);
    if (!resolve || !body) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    const headers = {
      ETag: `"${isLfs(path) ? sha256(body) : gitOid(body)}"`,
      'X-Repo-Commit': repo.commit,
      'Content-Type': 'application/octet-stream',
    };
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (range) {
      const [start, end] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
      res.writeHead(206, {
        ...headers,
        'Content-Range': `bytes ${start}-${end}/${body.length}`,
        'Content-Length': end - start + 1,
      });
      return res.end(body.subarray(start, end + 1));
    }
    res.writeHead(200, { ...headers, 'Content-Length': body.length });
    if (repo.corruptPath === path) return res.end(Buffer.from(body).fill(7, 100, 200));
    if (repo.dropPath === path) {
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(body);
  };
  const server = createServer(handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
