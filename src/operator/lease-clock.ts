// When a worker's lease on its attempt runs out, by this operator's own clock. The lease counts
// from the moment this process first saw the attempt's current renewTime, never from the
// timestamp the worker wrote: a worker node's clock may differ from the operator's, and a cache
// that shows a renewal late must not make a live attempt look expired. A new leader thus gives
// every running attempt one full lease from the moment it first sees it, as a standby does
// with the leader Lease itself.
import type { Assignment } from "../api/index.ts";

/** The attempt's lease in milliseconds: its own leaseSeconds, else the operator's default. */
export const leaseMsOf = (a: Pick<Assignment, "leaseSeconds">, defaultSeconds: number): number =>
  (a.leaseSeconds ?? defaultSeconds) * 1000;

export class LeaseClock {
  private readonly seen = new Map<string, { mark: string; at: number }>();

  /** Local time (ms since the epoch) at which the job's current attempt loses its lease. */
  expiresAt(
    jobKey: string,
    a: Pick<Assignment, "attempt" | "renewTime">,
    leaseMs: number,
    now: number,
  ): number {
    const mark = `${a.attempt} ${a.renewTime ?? ""}`;
    let seen = this.seen.get(jobKey);
    if (seen?.mark !== mark) {
      seen = { mark, at: now };
      this.seen.set(jobKey, seen);
    }
    return seen.at + leaseMs;
  }

  /** Drops what is remembered of a job that is no longer running. */
  forget(jobKey: string): void {
    this.seen.delete(jobKey);
  }
}
