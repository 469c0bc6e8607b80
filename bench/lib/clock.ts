/**
 * One clock for every process: process.hrtime() is CLOCK_MONOTONIC
 * (uv_hrtime), absolute, so values from two processes on one machine compare.
 */
export function nowUs(): number {
  const t = process.hrtime();
  return t[0] * 1e6 + Math.floor(t[1] / 1000);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Payloads start with the send time in µs, then the sequence number, padded to `bytes`. */
export function payloadMaker(bytes: number): (seq: number) => string {
  const pad = 'x'.repeat(Math.max(bytes, 40));
  return (seq) => {
    const head = `${nowUs()} ${seq} `;
    return head + pad.slice(head.length);
  };
}

/** The send time at the start of a payload (digits up to the first non-digit). */
export function sentUsOfBytes(data: Uint8Array): number {
  let t = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (c < 48 || c > 57) break;
    t = t * 10 + (c - 48);
  }
  return t;
}

export function sentUsOfString(s: string): number {
  let t = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    t = t * 10 + (c - 48);
  }
  return t;
}
