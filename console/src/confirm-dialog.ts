// Asks before anything that changes the node (deploy, activate, undeploy). A <dialog> in
// the page rather than window.confirm: it says exactly what will happen, it can be styled,
// and a browser test can read and click it like a person would.
import { h } from "./dom.js";

/** Resolves true when the person presses `confirmLabel`, false on Cancel or Escape. "danger" paints it red (undeploy). */
export function confirmAction(title: string, detail: string, confirmLabel: string, tone: "primary" | "danger" = "primary"): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = false;
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel");
    const confirm = h("button", { type: "button", class: tone, onclick: () => ((answer = true), dialog.close()) }, confirmLabel);
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, detail),
      h("div", { class: "actions" }, cancel, confirm),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice is the default
  });
}
