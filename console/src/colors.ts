// One colour per name (a node, a service), the same on every chart and picture of a page.

const PALETTE = ["#2f6fde", "#e0672b", "#1f9d6b", "#b8439b", "#c99a06", "#4aa8c4", "#8a5cd6", "#d1435b", "#6b8e23", "#7a6a58"];

export class ColorMap {
  readonly #assigned = new Map<string, string>();

  colorOf(name: string): string {
    let color = this.#assigned.get(name);
    if (color === undefined) {
      color = PALETTE[this.#assigned.size % PALETTE.length]!;
      this.#assigned.set(name, color);
    }
    return color;
  }
}

/** "keystate.examples.shoppingcart.ShoppingCart" -> "ShoppingCart": fits a legend; the full name goes in a tooltip. */
export function shortName(service: string): string {
  return service.slice(service.lastIndexOf(".") + 1);
}
