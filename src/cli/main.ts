// The `framefleet` command. Each subcommand lives in ./commands/<name>.ts and exports
// `command: Command`; this file only routes, so adding a subcommand never touches it.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Command {
  /** One line shown by `framefleet help`. */
  summary: string;
  /** Runs the subcommand with the arguments after its name; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), "commands");

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => /\.(ts|js)$/.test(f) && !f.includes(".test."))
    .map((f) => f.replace(/\.(ts|js)$/, ""))
    .sort();
}

async function loadCommand(name: string): Promise<Command | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !commandNames().includes(name)) return undefined;
  const ext = import.meta.url.endsWith(".ts") ? "ts" : "js";
  const mod = (await import(join(commandsDir, `${name}.${ext}`))) as { command: Command };
  return mod.command;
}

async function printHelp(): Promise<void> {
  const lines = ["usage: framefleet <command> [options]", "", "commands:"];
  for (const name of commandNames()) {
    const cmd = await loadCommand(name);
    if (cmd) lines.push(`  ${name.padEnd(12)} ${cmd.summary}`);
  }
  lines.push("", "Run `framefleet <command> --help` for a command's options.");
  process.stdout.write(`${lines.join("\n")}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    await printHelp();
    return name === undefined ? 2 : 0;
  }
  const cmd = await loadCommand(name);
  if (!cmd) {
    process.stderr.write(`framefleet: unknown command '${name}' (see \`framefleet help\`)\n`);
    return 2;
  }
  return cmd.run(rest);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
