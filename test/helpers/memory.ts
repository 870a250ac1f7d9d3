import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Peak growth of this process's live memory (heap + array buffers) while `work` runs, sampled
 * every 250 ms after a forced GC (a full GC of a large test process is not free), so the figure is live data rather than garbage in waiting.
 * Used to show that a large transfer streams instead of being buffered.
 */
export async function peakLiveGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growthMb: number }> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const live = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  gc();
  const baseline = live();
  let peak = baseline;
  const timer = setInterval(() => {
    gc();
    peak = Math.max(peak, live());
  }, 250);
  try {
    const result = await work();
    return { result, growthMb: (peak - baseline) / 1e6 };
  } finally {
    clearInterval(timer);
  }
}
