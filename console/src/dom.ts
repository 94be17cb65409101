// The only way the console builds DOM: elements from a tag, attributes and children, where
// every string child becomes a text node. Entity keys, payloads and error messages come
// from whoever called the node, so nothing here ever parses a string as HTML.

export type Child = Node | string | number | null | undefined | false;

/** Attributes (set with setAttribute), and on<event> listeners. */
export type Props = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "style" || name.startsWith("on")) {
      // The CSP forbids inline style and handlers; a typo here should fail loudly, not silently.
      throw new Error(`h(): ${name} must be a listener or a class, not an attribute`);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, ...children);
  return element;
}

/** Appends children, strings and numbers as text. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces everything inside `parent` with `children`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (SVG presentation attributes like fill are not inline style). */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number> = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  append(element, ...children);
  return element;
}

/** Pretty JSON in a <pre>, as text. */
export function jsonBlock(value: unknown, className = "json"): HTMLPreElement {
  return h("pre", { class: className }, JSON.stringify(value, null, 2) ?? "undefined");
}
