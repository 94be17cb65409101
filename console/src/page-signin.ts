// Sign-in: the node's admin token, checked against the node before it is kept.
import { ApiError, checkToken } from "./api.js";
import { h, replace } from "./dom.js";
import { describeError, notice } from "./page.js";
import { saveToken } from "./session.js";

export function signInPage(root: HTMLElement, onSignedIn: () => void, reason?: string): void {
  const token = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const message = h("div", { "aria-live": "polite" }, reason ? notice("error", reason) : null);
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin" },
    h("h2", {}, "Sign in"),
    h("p", {}, "The admin token is printed when the node starts and saved in its data directory as ", h("code", {}, "admin-token"), "."),
    h("label", { for: "token" }, "Admin token"),
    token,
    h("div", { class: "row" }, submit),
    message,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault(); // checked with fetch; nothing is submitted (form-action 'none')
    const given = token.value.trim();
    submit.disabled = true;
    replace(message, notice("info", "Checking the token…"));
    checkToken(given)
      .then(() => {
        saveToken(given);
        onSignedIn();
      })
      .catch((error: unknown) => {
        const refused = error instanceof ApiError && error.httpStatus === 401;
        replace(message, notice("error", refused ? "Wrong token: the node refused it (401). Copy it again from the node's output or its admin-token file." : `Could not reach the node: ${describeError(error)}`));
        token.select();
      })
      .finally(() => (submit.disabled = false));
  });
  replace(root, form);
  token.focus();
}
