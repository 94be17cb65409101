// The console's entry point: the page frame, sign-in, and hash routing between the pages
// (#/overview, #/modules, #/call, #/inspect). Served by the node at /console.
import { whenTokenRefused } from "./api.js";
import { h, replace } from "./dom.js";
import type { Page } from "./page.js";
import { callPage } from "./page-call.js";
import { inspectPage } from "./page-inspect.js";
import { modulesPage } from "./page-modules.js";
import { overviewPage } from "./page-overview.js";
import { signInPage } from "./page-signin.js";
import { forgetToken, savedToken } from "./session.js";

const PAGES: Readonly<Record<string, Page>> = {
  overview: overviewPage,
  modules: modulesPage,
  call: callPage,
  inspect: inspectPage,
};

const nav = h("nav", { "aria-label": "pages" });
const signOut = h("button", { type: "button", class: "secondary small", onclick: () => signOutWith(undefined) }, "Sign out");
const main = h("main");
let unmount: () => void = () => undefined;

function pageName(): string {
  const name = location.hash.replace(/^#\/?/, "");
  return name in PAGES ? name : "overview";
}

function render(): void {
  unmount();
  unmount = () => undefined;
  if (savedToken() === undefined) {
    replace(nav);
    signOut.hidden = true;
    signInPage(main, render);
    return;
  }
  const current = pageName();
  replace(nav, ...Object.entries(PAGES).map(([name, page]) => h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : undefined }, page.title)));
  signOut.hidden = false;
  const page = PAGES[current]!;
  document.title = `${page.title} · Keystate console`;
  unmount = page.mount(main);
}

function signOutWith(reason: string | undefined): void {
  forgetToken();
  unmount();
  unmount = () => undefined;
  replace(nav);
  signOut.hidden = true;
  signInPage(main, render, reason);
}

whenTokenRefused((error) => signOutWith(`The node refused the token (${error.httpStatus}). Sign in again.`));
window.addEventListener("hashchange", render);
replace(document.body, h("header", { class: "top" }, h("h1", {}, "Keystate"), nav, signOut), main);
render();
