// Modules: every deployed module with its versions, hash, size, services and methods;
// deploy a .wasm by upload, activate an older version, undeploy. Each change asks first.
import { activateVersion, deployModule, listModules, listServices, undeployModule } from "./api.js";
import type { ModuleSummary, ServiceDescription } from "./api-types.js";
import { confirmAction } from "./confirm-dialog.js";
import { h, replace } from "./dom.js";
import { bytes, dateTime, shortHash } from "./format.js";
import { describeError, notice, section, type Page } from "./page.js";

export const modulesPage: Page = {
  title: "Modules",
  mount(root) {
    const result = h("div", { class: "result" });
    const list = h("div", {}, notice("info", "Loading modules…"));
    const file = h("input", { type: "file", id: "module-file", accept: ".wasm,application/wasm" });
    const deployButton = h("button", { type: "button", onclick: () => void deploy() }, "Deploy…");

    const show = (kind: "ok" | "error", text: string) => replace(result, notice(kind, text));

    const refresh = async () => {
      try {
        const [modules, services] = await Promise.all([listModules(), listServices()]);
        replace(list, ...(modules.length ? modules.map((m) => moduleCard(m, services)) : [notice("info", "No modules are deployed.")]));
      } catch (error) {
        replace(list, notice("error", `Could not list the modules: ${describeError(error)}`));
      }
    };

    const deploy = async () => {
      const chosen = file.files?.[0];
      if (!chosen) return show("error", "Choose a .wasm file first.");
      const go = await confirmAction("Deploy a module?", `Upload ${chosen.name} (${bytes(chosen.size)}) as the next version of the module it names. Its services change at once.`, "Deploy");
      if (!go) return;
      try {
        const deployed = await deployModule(chosen);
        show("ok", `Deployed ${deployed.name} version ${deployed.version} (${deployed.services.join(", ") || "no services"}).`);
        file.value = "";
      } catch (error) {
        show("error", `Deploy refused: ${describeError(error)}`);
      }
      await refresh();
    };

    const activate = async (name: string, version: number) => {
      if (!(await confirmAction(`Activate ${name} version ${version}?`, `New calls to ${name}'s services run version ${version} from now on; calls in flight finish on the current one.`, "Activate"))) return;
      try {
        await activateVersion(name, version);
        show("ok", `${name} version ${version} is active.`);
      } catch (error) {
        show("error", `Could not activate ${name} version ${version}: ${describeError(error)}`);
      }
      await refresh();
    };

    const undeploy = async (name: string) => {
      if (!(await confirmAction(`Undeploy ${name}?`, `${name}'s services stop answering at once. Its stored state stays.`, "Undeploy", "danger"))) return;
      try {
        await undeployModule(name);
        show("ok", `${name} is undeployed.`);
      } catch (error) {
        show("error", `Could not undeploy ${name}: ${describeError(error)}`);
      }
      await refresh();
    };

    const moduleCard = (module: ModuleSummary, services: readonly ServiceDescription[]) => {
      const own = services.filter((s) => s.module.name === module.name);
      return h(
        "article",
        { class: "module", "data-module": module.name },
        h(
          "header",
          {},
          h("h3", {}, module.name),
          h("span", { class: "tag" }, module.version === null ? "no active version" : `version ${module.version} active`),
          h("button", { type: "button", class: "danger small", onclick: () => void undeploy(module.name) }, `Undeploy ${module.name}`),
        ),
        own.length
          ? h(
              "ul",
              { class: "services" },
              ...own.map((s) =>
                h(
                  "li",
                  {},
                  h("span", { class: "mono" }, s.service),
                  h("span", { class: "tag" }, s.kind),
                  h("ul", { class: "methods" }, ...s.methods.map((m) => h("li", { class: "mono" }, `${m.name}(${m.inputType}) → ${m.serverStreaming ? "stream " : ""}${m.outputType}`))),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No services loaded on this node."),
        h(
          "table",
          { class: "versions" },
          h("thead", {}, h("tr", {}, h("th", { class: "num" }, "version"), h("th", {}, "hash"), h("th", { class: "num" }, "size"), h("th", {}, "deployed"), h("th", {}))),
          h(
            "tbody",
            {},
            ...[...module.versions]
              .sort((a, b) => b.version - a.version)
              .map((v) =>
                h(
                  "tr",
                  {},
                  h("td", { class: "num" }, v.version),
                  h("td", { class: "mono", title: v.hash }, shortHash(v.hash)),
                  h("td", { class: "num" }, bytes(v.size)),
                  h("td", {}, dateTime(v.deployedAt)),
                  h(
                    "td",
                    {},
                    v.version === module.version
                      ? h("span", { class: "tag active" }, "active")
                      : h("button", { type: "button", class: "small", onclick: () => void activate(module.name, v.version) }, `Activate version ${v.version}`),
                  ),
                ),
              ),
          ),
        ),
      );
    };

    replace(
      root,
      section("Deploy", h("div", { class: "row" }, h("label", { for: "module-file" }, "Module (.wasm)"), file, deployButton), result),
      section("Deployed modules", list),
    );
    void refresh();
    return () => undefined;
  },
};
