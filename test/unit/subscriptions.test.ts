// A module's subscriptions are checked against its own API when it is deployed: a subscription
// that could never be delivered is refused at upload, with the subscription named.
import test from "ava";
import { checkSubscriptions, subscriptionId, type SubscriptionManifest } from "../../host/runtime/subscriptions.js";
import type { Manifest } from "../../host/runtime/module-sections.js";
import type { ApiModel } from "../../host/runtime/service-model.js";

const api = {
  services: new Map([
    ["m.Handler", { methods: new Map([["OnOrder", { clientStreaming: false, serverStreaming: false }], ["Watch", { clientStreaming: false, serverStreaming: true }]]) }],
  ]),
} as unknown as ApiModel;

function manifestWith(...subscriptions: Array<Partial<SubscriptionManifest>>): Manifest {
  const full = subscriptions.map((sub) => ({ topic: "", eventLog: "", service: "m.Handler", method: "", maxAttempts: 0, fromStart: true, ...sub }));
  return { name: "m", services: [], abiVersion: 2, fuelPerCall: 0, subscriptions: full };
}

test("well-formed topic and event-log subscriptions pass", (t) => {
  t.notThrows(() => checkSubscriptions(manifestWith({ topic: "orders", method: "OnOrder" }, { eventLog: "cart" }), api));
});

test("each way a subscription cannot be delivered is refused with the subscription named", (t) => {
  const refused = (sub: Partial<SubscriptionManifest>, message: RegExp) =>
    t.throws(() => checkSubscriptions(manifestWith(sub), api), { message }, JSON.stringify(sub));
  refused({ topic: "orders", eventLog: "cart", method: "OnOrder" }, /subscription 1 .*set exactly one of "topic" and "eventLog"/);
  refused({ method: "OnOrder" }, /set exactly one/);
  refused({ topic: "bad topic!", method: "OnOrder" }, /a topic name is 1-100 letters/);
  refused({ topic: "orders", service: "m.Missing", method: "OnOrder" }, /the module serves no service m\.Missing/);
  refused({ topic: "orders", method: "Nope" }, /m\.Handler has no method "Nope"/);
  refused({ topic: "orders", method: "Watch" }, /a subscriber method must be unary/);
  refused({ eventLog: "cart", method: "OnOrder" }, /an event-log subscription names no method/);
  t.throws(() => checkSubscriptions(manifestWith({ topic: "orders", method: "OnOrder" }, { topic: "orders", method: "OnOrder", maxAttempts: 3 }), api), { message: /declared twice/ });
  t.notThrows(() => checkSubscriptions(manifestWith({ topic: "orders", method: "OnOrder" }, { topic: "orders-eu", method: "OnOrder" }), api), "one method may consume two topics");
});

test("a subscription's durable name does not change with the module's version", (t) => {
  t.is(subscriptionId("shop", { service: "m.Handler", method: "OnOrder" }), "shop/m.Handler/OnOrder");
  t.is(subscriptionId("shop", { service: "m.Handler", method: "" }), "shop/m.Handler");
});
