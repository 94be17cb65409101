// What every page of the console is, and the small pieces they share.
import { ApiError } from "./api.js";
import { h } from "./dom.js";

export interface Page {
  readonly title: string;
  /** Renders into `root`; returns what stops the page's timers when another page opens. */
  mount(root: HTMLElement): () => void;
}

/** A line saying what happened: an error (role=alert, read out by screen readers), or a success. */
export function notice(kind: "error" | "ok" | "info", text: string): HTMLParagraphElement {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** An error as a person should read it (the node's status and message, or what the browser said). */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}

export function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}
