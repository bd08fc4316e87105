/** The F32 tensors of a safetensors file, for the tests that compare with what another library saved. */
import { readFile } from 'node:fs/promises';

/** The F32 tensors of the safetensors file `path`, by name (tensors of other dtypes are left out). */
export async function safetensors(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const file = await readFile(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8'));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(header) as [
    string,
    { dtype: string; shape: number[]; data_offsets: number[] },
  ][]) {
    if (name === '__metadata__' || t.dtype !== 'F32') continue;
    const bytes = file.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
    out.set(name, {
      shape: t.shape,
      data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)),
    });
  }
  return out;
}
