/**
 * Preloaded into one bench process (`BENCH_SURVIVORS=<name>`, see procs.ts):
 * samples its allocations with the inspector's heap profiler, leaving out
 * every object a scavenge freed, so the profile shows where what survives
 * the young generation was allocated. That is what a scavenge pays for,
 * and where a chain of dead objects keeping new ones alive shows first.
 * The window is `BENCH_SURVIVORS_WINDOW_S` ("from,to" seconds after the
 * process starts; default 4,7); the profile opens in Chrome DevTools.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const [fromS = 4, toS = 7] = (process.env['BENCH_SURVIVORS_WINDOW_S'] ?? '').split(',').filter(Boolean).map(Number);
const out = path.resolve('bench/out/profiles', `${process.env['BENCH_NAME'] ?? 'proc'}-${Date.now()}.survivors.heapprofile`);
const session = new Session();
session.connect();
setTimeout(() => {
  session.post(
    'HeapProfiler.startSampling',
    { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false },
    () => {
      setTimeout(
        () =>
          session.post('HeapProfiler.stopSampling', (err, result) => {
            if (err === null) writeFileSync(out, JSON.stringify(result.profile));
          }),
        (toS - fromS) * 1000,
      ).unref();
    },
  );
}, fromS * 1000).unref();
