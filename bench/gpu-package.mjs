// The public API from the CUDA package as a user installs it: run by `scripts/gpu-check.sh run`
// in the folder where `pack` installed the packed tarballs (tsbert, tsbert-linux-x64-gnu,
// tsbert-linux-x64-gnu-cuda), with the CUDA libraries on the library path but not NCCL (one
// GPU must not need it). Prints one JSON line; exit code 1 unless the CUDA package's addon
// loaded and a short pretraining run and the crane example ran on the GPU with finite values.
// `TSBERT_GPU_CHECK_DEVICE=cpu` runs it on the CPU (a dry run where there is no GPU).
import { devices, encode, pretrain } from 'tsbert';

const device = process.env.TSBERT_GPU_CHECK_DEVICE ?? 'cuda';
const report = devices();
const lines = Array.from(
  { length: 80 },
  () => ' a crane is flying over the river . the crane driver came to work . he just left the house . ',
);
const { model, summary } = await pretrain({
  data: lines,
  steps: 5,
  batchSize: 16,
  maxLen: 24,
  minFreq: 1,
  device,
  config: { hidden: 16, ffnHidden: 32 },
});
const flying = await encode(model, ['a', 'crane', 'is', 'flying']);
const driver = await encode(model, ['a', 'crane', 'driver', 'came']);
const crane = (x) => [...x.token(2).data];
const finite = [summary.mlmLoss, summary.nspLoss, ...flying.data, ...driver.data].every(Number.isFinite);
const contextual = crane(flying).some((v, i) => v !== crane(driver)[i]);
const fromPackage = report.build === 'cuda' && report.addon === 'tsbert-linux-x64-gnu-cuda';
const ok = finite && contextual && summary.device.startsWith(device) && (device === 'cpu' || fromPackage);
console.log(
  JSON.stringify({ ok, devices: report, trainedOn: summary.device, shape: flying.shape, finite, contextual }),
);
process.exitCode = ok ? 0 : 1;
