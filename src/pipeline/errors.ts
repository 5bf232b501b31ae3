// Errors the pipeline raises, with a code that says whose fault it is: bad input (exit 2, never
// worth retrying), cancellation, or a failure of the engine or the machine (worth a retry).

export type PipelineErrorCode =
  /** The job asks for something the model cannot do: unknown words, sizes off the grid, bad knobs. */
  | "E_BAD_REQUEST"
  /** The model directory is missing or unreadable. */
  | "E_MODEL_NOT_FOUND"
  /** The model directory exists but its files are not a valid model. */
  | "E_MODEL_FORMAT"
  /** The run was cancelled through its AbortSignal. */
  | "E_ABORTED"
  /** Anything else: the engine, ffmpeg, the file system. */
  | "E_INTERNAL";

export class PipelineError extends Error {
  readonly code: PipelineErrorCode;
  constructor(code: PipelineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PipelineError";
    this.code = code;
  }
}

const INPUT_CODES = new Set<string>(["E_BAD_REQUEST", "E_MODEL_NOT_FOUND", "E_MODEL_FORMAT"]);

/** True for errors a user fixes by changing the input; retrying them cannot help. */
export function isInputError(err: unknown): boolean {
  return INPUT_CODES.has(errorCode(err) ?? "");
}

export function isAbort(err: unknown): boolean {
  return errorCode(err) === "E_ABORTED" || (err instanceof Error && err.name === "AbortError");
}

/** The `code` of an error from the pipeline or the native engine, if it has one. */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") return err.code;
  return undefined;
}
