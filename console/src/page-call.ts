// Call: pick a service and method, edit the request (prefilled with every field of the
// request message), send it through the node's HTTP/JSON transcoder, read the reply or
// the error status. Server-streaming methods show each message as it arrives until stopped.
import { callMethod, errorOf, listServices } from "./api.js";
import type { MethodDescription, ServiceDescription } from "./api-types.js";
import { h, jsonBlock, replace } from "./dom.js";
import { describeError, notice, section, type Page } from "./page.js";

export const callPage: Page = {
  title: "Call",
  mount(root) {
    const serviceSelect = h("select", { id: "call-service" });
    const methodSelect = h("select", { id: "call-method" });
    const shape = h("p", { class: "muted mono" });
    const editor = h("textarea", { id: "call-request", rows: 10, spellcheck: "false", autocomplete: "off" });
    const send = h("button", { type: "button", onclick: () => void call() }, "Send");
    const stop = h("button", { type: "button", class: "secondary", disabled: true, onclick: () => running?.abort() }, "Stop");
    const output = h("div", { class: "reply", "aria-live": "polite" });
    let services: readonly ServiceDescription[] = [];
    let running: AbortController | undefined;

    const currentMethod = (): MethodDescription | undefined =>
      services.find((s) => s.service === serviceSelect.value)?.methods.find((m) => m.name === methodSelect.value);

    const showMethod = () => {
      const method = currentMethod();
      if (!method) return;
      editor.value = JSON.stringify(method.requestTemplate, null, 2);
      shape.textContent = `${method.inputType} → ${method.serverStreaming ? "stream of " : ""}${method.outputType}`;
      send.disabled = method.clientStreaming;
      replace(output, method.clientStreaming ? notice("info", "Client-streaming methods are not served over HTTP; call this one over gRPC.") : null);
    };

    const showService = () => {
      const service = services.find((s) => s.service === serviceSelect.value);
      replace(methodSelect, ...(service?.methods ?? []).map((m) => h("option", { value: m.name }, m.name)));
      showMethod();
    };
    serviceSelect.addEventListener("change", showService);
    methodSelect.addEventListener("change", showMethod);

    const call = async () => {
      const method = currentMethod();
      if (!method) return;
      try {
        JSON.parse(editor.value);
      } catch (error) {
        replace(output, notice("error", `The request is not valid JSON: ${describeError(error)}`));
        return;
      }
      running?.abort();
      const controller = new AbortController();
      running = controller;
      stop.disabled = !method.serverStreaming;
      const started = performance.now();
      replace(output, notice("info", "Calling…"));
      try {
        const response = await callMethod(serviceSelect.value, method.name, editor.value, controller.signal);
        const elapsed = `${Math.round(performance.now() - started)} ms`;
        const requestId = response.headers.get("x-request-id") ?? "";
        if (!response.ok) {
          const error = await errorOf(response);
          replace(output, notice("error", `${error.describe()}`), h("p", { class: "muted" }, `${elapsed} · request id ${requestId}`));
          return;
        }
        const status = h("p", { class: "notice ok", role: "status" }, `${response.status} OK · ${elapsed} · request id ${requestId}`);
        if (!method.serverStreaming) {
          replace(output, status, jsonBlock(await response.json()));
          return;
        }
        const messages = h("div", { class: "stream" });
        replace(output, status, messages);
        await readLines(response, (line) => messages.appendChild(jsonBlock(parseOrText(line))));
        messages.appendChild(h("p", { class: "muted" }, "The stream ended."));
      } catch (error) {
        if (controller.signal.aborted) output.appendChild(h("p", { class: "muted" }, "Stopped."));
        else replace(output, notice("error", `The call failed: ${describeError(error)}`));
      } finally {
        if (running === controller) {
          running = undefined;
          stop.disabled = true;
        }
      }
    };

    replace(
      root,
      section(
        "Call a method",
        h("div", { class: "form-grid" }, h("label", { for: "call-service" }, "Service"), serviceSelect, h("label", { for: "call-method" }, "Method"), methodSelect),
        shape,
        h("label", { for: "call-request" }, "Request (JSON)"),
        editor,
        h("div", { class: "row" }, send, stop),
      ),
      section("Reply", output),
    );

    void (async () => {
      try {
        services = await listServices();
        replace(serviceSelect, ...services.map((s) => h("option", { value: s.service }, s.service)));
        showService();
      } catch (error) {
        replace(output, notice("error", `Could not list the services: ${describeError(error)}`));
      }
    })();
    return () => running?.abort();
  },
};

/** Calls `onLine` with each newline-delimited line of the body as it arrives. */
async function readLines(response: Response, onLine: (line: string) => void): Promise<void> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += value;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) onLine(line);
    }
  }
  if (pending.trim()) onLine(pending.trim());
}

function parseOrText(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return line;
  }
}
