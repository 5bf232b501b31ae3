// Status writes on jobs are JSON Patches guarded by `test` ops. Two rules make them safe when
// writers race (a stale worker, two operators that both think they lead):
// - a worker's write tests that the assignment is still its own (worker and attempt);
// - an assignment tests the attempt count it was computed from, so only one of two concurrent
//   assignments of attempt n can succeed.
import type { Assignment } from "../api/index.ts";
import type { JsonPatchOp } from "../kube/index.ts";

/** `test` ops that fail unless the job is still assigned to `worker` for `attempt`. */
export function fenceOps(assignment: Pick<Assignment, "worker" | "attempt">): JsonPatchOp[] {
  return [
    { op: "test", path: "/status/assignment/worker", value: assignment.worker },
    { op: "test", path: "/status/assignment/attempt", value: assignment.attempt },
  ];
}

/**
 * `test` ops for ending an attempt because its lease ran out: besides the worker and attempt,
 * the renewal the decision was computed from (when the assignment has one), so a renewal that
 * landed after the operator's read (a cache a moment behind) makes the requeue fail instead of
 * revoking a live worker.
 */
export function expiryFenceOps(
  assignment: Pick<Assignment, "worker" | "attempt" | "renewTime">,
): JsonPatchOp[] {
  const ops = fenceOps(assignment);
  if (assignment.renewTime !== undefined)
    ops.push({ op: "test", path: "/status/assignment/renewTime", value: assignment.renewTime });
  return ops;
}

/**
 * Sets fields of status (which must exist) with `add`, which also replaces existing members;
 * an undefined value removes the field when `current` has it (removing a missing path fails).
 */
export function setStatusOps(fields: Record<string, unknown>, current: object = {}): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  for (const [key, value] of Object.entries(fields)) {
    const path = `/status/${escapePointer(key)}`;
    if (value !== undefined) ops.push({ op: "add", path, value });
    else if (key in current && (current as Record<string, unknown>)[key] !== undefined)
      ops.push({ op: "remove", path });
  }
  return ops;
}

/** RFC 6901 escaping of one JSON Pointer segment. */
export const escapePointer = (segment: string): string => segment.replace(/~/g, "~0").replace(/\//g, "~1");

/**
 * The dispatcher's write that hands attempt `attempt` of a Queued job to a worker: it tests the
 * phase and the attempt count it read, so a second writer holding the same read fails.
 */
export function assignOps(
  previousAttempts: number,
  assignment: Assignment,
  extra: Record<string, unknown>,
  current: object,
): JsonPatchOp[] {
  return [
    { op: "test", path: "/status/phase", value: "Queued" },
    { op: "test", path: "/status/attempts", value: previousAttempts },
    ...setStatusOps({ ...extra, attempts: assignment.attempt, assignment }, current),
  ];
}
