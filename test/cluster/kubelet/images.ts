// The image -> local entrypoint map (test/cluster/images.yaml) and command resolution.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { expandVars } from "./env.ts";
import type { Container } from "./types.ts";

export interface ImageEntry {
  match: string;
  entrypoint: string[];
  workingDir?: string;
}

export class NoEntrypointError extends Error {
  readonly reason = "ImageHasNoLocalEntrypoint";
}

export function loadImageMap(path: string, repoRoot: string): ImageEntry[] {
  const doc = parse(readFileSync(path, "utf8")) as { images?: ImageEntry[] };
  const vars: Record<string, string> = { NODE: process.execPath, REPO: repoRoot };
  const subst = (s: string) => s.replace(/\$\{(NODE|REPO)\}/g, (_m, name: string) => vars[name] ?? "");
  return (doc.images ?? []).map((e) => ({
    match: e.match,
    entrypoint: e.entrypoint.map(subst),
    workingDir: e.workingDir ? subst(e.workingDir) : undefined,
  }));
}

/** argv (with $(VAR) expanded) and the image's default working directory. */
export function resolveCommand(
  container: Container,
  images: ImageEntry[],
  env: Record<string, string>,
  imageMapPath: string,
): { argv: string[]; workingDir?: string } {
  const args = (container.args ?? []).map((a) => expandVars(a, env));
  if (container.command?.length) {
    return { argv: [...container.command.map((a) => expandVars(a, env)), ...args] };
  }
  const image = container.image ?? "";
  const entry = images.find((e) => image.includes(e.match));
  if (!entry) {
    throw new NoEntrypointError(
      `container ${container.name}: image "${image}" has no local entrypoint and the container sets no command; ` +
        `set command, or map the image in ${imageMapPath}`,
    );
  }
  return { argv: [...entry.entrypoint, ...args], workingDir: entry.workingDir };
}
