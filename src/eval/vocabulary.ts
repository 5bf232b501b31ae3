// The tiny-shapes scene vocabulary (docs/DATASET.md): the words a caption may use and the exact
// colours the renderer paints. The analyzer compares what it measures against these tables.
import { z } from "zod";

export type Rgb = readonly [number, number, number];

export const shapes = ["circle", "square", "triangle"] as const;
export const colours = ["red", "green", "blue", "yellow", "orange", "purple", "white", "pink"] as const;
export const directions = ["left", "right", "up", "down"] as const;
export const backgrounds = ["black", "gray", "navy"] as const;

export const Shape = z.enum(shapes);
export const Colour = z.enum(colours);
export const Direction = z.enum(directions);
export const Background = z.enum(backgrounds);
export type Shape = z.infer<typeof Shape>;
export type Colour = z.infer<typeof Colour>;
export type Direction = z.infer<typeof Direction>;
export type Background = z.infer<typeof Background>;

export const colourRgb: Readonly<Record<Colour, Rgb>> = {
  red: [220, 40, 40],
  green: [40, 180, 60],
  blue: [50, 90, 230],
  yellow: [240, 220, 50],
  orange: [245, 140, 30],
  purple: [150, 60, 200],
  white: [245, 245, 245],
  pink: [250, 130, 190],
};

export const backgroundRgb: Readonly<Record<Background, Rgb>> = {
  black: [15, 15, 15],
  gray: [110, 110, 110],
  navy: [20, 30, 80],
};

/** What a caption asks for: one object of a colour and shape moving one way on a background. */
export const Scene = z.object({
  colour: Colour,
  shape: Shape,
  direction: Direction,
  background: Background,
});
export type Scene = z.infer<typeof Scene>;

/** A (colour, shape, direction) triple; the unit in which held-out combinations are listed. */
export type Combination = Pick<Scene, "colour" | "shape" | "direction">;

/** Never seen in training, on any background (docs/DATASET.md, "Held-out combinations"). */
export const heldOutCombinations: readonly Combination[] = [
  { colour: "red", shape: "triangle", direction: "left" },
  { colour: "green", shape: "circle", direction: "up" },
  { colour: "blue", shape: "square", direction: "right" },
  { colour: "yellow", shape: "triangle", direction: "down" },
  { colour: "orange", shape: "circle", direction: "left" },
  { colour: "purple", shape: "square", direction: "up" },
  { colour: "white", shape: "triangle", direction: "right" },
  { colour: "pink", shape: "circle", direction: "down" },
];

export function isHeldOut(c: Combination): boolean {
  return heldOutCombinations.some(
    (h) => h.colour === c.colour && h.shape === c.shape && h.direction === c.direction,
  );
}
