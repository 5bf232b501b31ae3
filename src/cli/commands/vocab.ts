import { parseArgs } from "node:util";
import { describeError, exitCodeFor, resolveModelDir } from "../../pipeline/local.ts";
import { promptVocabulary, readModelInfo } from "../../pipeline/model-dir.ts";
import type { Command } from "../main.ts";

const usage = `usage: framefleet vocab [--model NAME|DIR] [--json]

Lists the words a model's prompts may use (its vocab.txt without <pad> and <bos>).
  --model NAME|DIR   a bundled model name or a model directory (default tiny-shapes)
  --json             print {"model", "maxWords", "words"} as JSON`;

export const command: Command = {
  summary: "list the words a model's prompts may use",
  async run(args) {
    let values: { model?: string; json?: boolean; help?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          model: { type: "string" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        },
      }));
    } catch (err) {
      process.stderr.write(`framefleet vocab: ${(err as Error).message}\n${usage}\n`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    try {
      const info = await readModelInfo(resolveModelDir(values.model ?? "tiny-shapes"));
      const words = promptVocabulary(info);
      const maxWords = info.config.text.max_tokens - 1;
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ model: info.config.name, maxWords, words })}\n`);
      } else {
        process.stdout.write(
          `${info.config.name}: ${words.length} words, at most ${maxWords} per prompt\n${words.join(" ")}\n`,
        );
      }
      return 0;
    } catch (err) {
      process.stderr.write(`framefleet vocab: ${describeError(err)}\n`);
      return exitCodeFor(err);
    }
  },
};
