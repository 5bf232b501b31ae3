// The one logger: pino JSON lines on stderr, level from LOG_LEVEL (default: info). Every line
// about an object carries its key (`namespace/name`) through `forObject`.
import { pino } from "pino";

export const logger = pino(
  {
    name: "framefleet",
    level: process.env.LOG_LEVEL ?? "info",
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  pino.destination({ dest: 2, sync: true }),
);

export type Logger = typeof logger;

/** A child logger for one object; `key` is `namespace/name`. */
export function forObject(kind: string, key: string, parent: Logger = logger): Logger {
  return parent.child({ kind, key });
}
