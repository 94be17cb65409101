// Inspect: one entity's state and, for event-sourced entities, its journal, from the
// inspection API (GET /entities/...). Keys and payloads are whatever callers sent: they are
// only ever shown as text.
import { entityEvents, inspectEntity, listServices } from "./api.js";
import type { EntityView, EventPage } from "./api-types.js";
import { h, jsonBlock, replace } from "./dom.js";
import { describeError, notice, section, type Page } from "./page.js";

const EVENTS_PER_PAGE = 50;

export const inspectPage: Page = {
  title: "Inspect",
  mount(root) {
    const serviceSelect = h("select", { id: "inspect-service" });
    const keyInput = h("input", { id: "inspect-key", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "entity key, e.g. ann" });
    const refresh = h("button", { type: "button", class: "secondary", disabled: true, onclick: () => void show() }, "Refresh");
    const form = h(
      "form",
      { class: "form-grid" },
      h("label", { for: "inspect-service" }, "Service"),
      serviceSelect,
      h("label", { for: "inspect-key" }, "Key"),
      keyInput,
      h("div", { class: "row" }, h("button", { type: "submit" }, "Inspect"), refresh),
    );
    const result = h("div", { class: "entity", "aria-live": "polite" });
    // Shown is what Refresh reloads: the entity last asked for, not what the inputs say now.
    let shown: { service: string; key: string } | undefined;

    form.addEventListener("submit", (event) => {
      event.preventDefault(); // nothing is ever submitted (the CSP says form-action 'none')
      shown = { service: serviceSelect.value, key: keyInput.value };
      void show();
    });

    const show = async () => {
      if (!shown) return;
      const { service, key } = shown;
      refresh.disabled = false;
      replace(result, notice("info", "Loading…"));
      try {
        const entity = await inspectEntity(service, key);
        const events = entity.kind === "event-sourced" && entity.exists ? await entityEvents(service, key, 1, EVENTS_PER_PAGE) : undefined;
        replace(result, entityView(entity), events ? eventsView(events) : null);
      } catch (error) {
        replace(result, notice("error", `Could not inspect ${service} / ${key}: ${describeError(error)}`));
      }
    };

    const eventsView = (first: EventPage): HTMLElement => {
      // Events carry a time only where the journal stores one: otherwise there is no column for it.
      const withTime = first.events.some((e) => e.time !== undefined);
      const rows = h("tbody");
      const more = h("div");
      const add = (page: EventPage) => {
        for (const event of page.events) {
          const cells = [h("td", { class: "num" }, event.seq), h("td", { class: "mono" }, event.type), h("td", {}, jsonBlock(event.payload))];
          rows.appendChild(h("tr", {}, ...cells, withTime ? h("td", {}, event.time ?? "") : null));
        }
        const next = page.nextFrom ?? (page.events[page.events.length - 1]?.seq ?? page.from - 1) + 1;
        replace(
          more,
          page.more
            ? h(
                "button",
                {
                  type: "button",
                  class: "secondary",
                  onclick: async () => {
                    try {
                      add(await entityEvents(page.service, page.key, next, EVENTS_PER_PAGE));
                    } catch (error) {
                      replace(more, notice("error", `Could not read more events: ${describeError(error)}`));
                    }
                  },
                },
                "Load more events",
              )
            : h("p", { class: "muted" }, `${page.lastSeq} event${page.lastSeq === 1 ? "" : "s"} in the journal.`),
        );
      };
      add(first);
      return h(
        "div",
        {},
        h("h3", {}, "Events"),
        first.events.length
          ? h("table", { class: "events" }, h("thead", {}, h("tr", {}, h("th", { class: "num" }, "seq"), h("th", {}, "type"), h("th", {}, "payload"), withTime ? h("th", {}, "time") : null)), rows)
          : h("p", { class: "muted" }, "No events."),
        more,
      );
    };

    replace(root, section("Inspect an entity", form), section("Entity", result));

    void (async () => {
      try {
        const services = (await listServices()).filter((s) => s.kind !== "action");
        replace(serviceSelect, ...services.map((s) => h("option", { value: s.service }, s.service)));
      } catch (error) {
        replace(result, notice("error", `Could not list the services: ${describeError(error)}`));
      }
    })();
    return () => undefined;
  },
};

function entityView(entity: EntityView): HTMLElement {
  const fact = (name: string, value: string | number) => [h("dt", {}, name), h("dd", {}, value)];
  return h(
    "div",
    {},
    h("h3", { class: "entity-key" }, h("span", { class: "muted" }, `${entity.service} / `), h("span", { class: "key" }, entity.key)),
    entity.exists ? null : notice("info", "This entity has no stored state yet (it was never written)."),
    h(
      "dl",
      { class: "facts" },
      ...fact("kind", entity.kind),
      ...fact("module", `${entity.module.name} version ${entity.module.version}`),
      ...fact("persistence id", entity.persistenceId),
      ...fact("sequence", entity.sequence ?? "–"),
      ...fact("resident on this node", entity.resident ? "yes" : "no"),
    ),
    h("h3", {}, "State"),
    entity.note ? notice("info", entity.note) : null,
    jsonBlock(entity.state),
  );
}
