// The console renders entity keys, payloads and error messages that any caller controls.
// It builds DOM only through console/src/dom.ts (text nodes and attributes), and this test
// keeps it that way: no HTML-parsing sink and no string-to-code call anywhere in its source.
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/node-process.js";

const SINKS = [/\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /document\.write/, /\beval\(/, /new Function\(/, /createContextualFragment/, /DOMParser/, /setAttribute\(\s*["']style/, /\.srcdoc\b/];

test("no console source file parses strings as HTML or code", (t) => {
  const dir = join(REPO_ROOT, "console", "src");
  const files = readdirSync(dir).filter((name) => name.endsWith(".ts"));
  t.true(files.length > 5);
  for (const file of files) {
    const source = readFileSync(join(dir, file), "utf8");
    for (const sink of SINKS) t.false(sink.test(source), `${file} uses ${sink}`);
  }
});

test("the page itself has no inline script or style (the CSP would refuse them)", (t) => {
  const html = readFileSync(join(REPO_ROOT, "console", "static", "index.html"), "utf8");
  t.false(/<script(?![^>]*\bsrc=)[^>]*>/.test(html), "every <script> has a src");
  t.false(/<style|\sstyle=|\son[a-z]+=/i.test(html));
});
