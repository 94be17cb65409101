// The requests the benchmarks send, per example module: a write command (the one we
// measure) and a read (to check afterwards that the writes really happened). Messages
// are encoded with protobufjs from a small JSON schema that mirrors the modules' protos.
import protobuf from "protobufjs";

const root = protobuf.Root.fromJSON({
  nested: {
    cart: {
      nested: {
        AddLineItem: { fields: { userId: { type: "string", id: 1 }, productId: { type: "string", id: 2 }, name: { type: "string", id: 3 }, quantity: { type: "int32", id: 4 } } },
        GetShoppingCart: { fields: { userId: { type: "string", id: 1 } } },
        LineItem: { fields: { productId: { type: "string", id: 1 }, name: { type: "string", id: 2 }, quantity: { type: "int32", id: 3 } } },
        Cart: { fields: { items: { rule: "repeated", type: "LineItem", id: 1 } } },
      },
    },
    counter: {
      nested: {
        ChangeValue: { fields: { counterId: { type: "string", id: 1 }, value: { type: "int64", id: 2 } } },
        CounterId: { fields: { counterId: { type: "string", id: 1 } } },
        CurrentValue: { fields: { value: { type: "int64", id: 1 } } },
      },
    },
    account: {
      nested: {
        OpenAccount: { fields: { accountId: { type: "string", id: 1 }, initialBalance: { type: "int64", id: 2 } } },
        AccountId: { fields: { accountId: { type: "string", id: 1 } } },
      },
    },
  },
});

export const messageTypes = {
  addLineItem: root.lookupType("cart.AddLineItem"),
  getShoppingCart: root.lookupType("cart.GetShoppingCart"),
  cart: root.lookupType("cart.Cart"),
  changeValue: root.lookupType("counter.ChangeValue"),
  counterId: root.lookupType("counter.CounterId"),
  currentValue: root.lookupType("counter.CurrentValue"),
  openAccount: root.lookupType("account.OpenAccount"),
  accountId: root.lookupType("account.AccountId"),
};

export interface Workload {
  /** Example module name (modules/<module>). */
  readonly module: "shopping-cart" | "counter";
  readonly service: string;
  readonly writeMethod: string;
  readonly readMethod: string;
  /** What one write does, for tables. */
  readonly describe: string;
  writePayload(key: string): Uint8Array;
  readPayload(key: string): Uint8Array;
  /** How many writes the read's reply shows applied (each write adds exactly 1). */
  applied(readReply: Uint8Array): number;
}

function encode(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

export const cartWorkload: Workload = {
  module: "shopping-cart",
  service: "keystate.examples.shoppingcart.ShoppingCart",
  writeMethod: "AddItem",
  readMethod: "GetCart",
  describe: "ShoppingCart/AddItem (event-sourced: one event appended per command)",
  writePayload: (key) => encode(messageTypes.addLineItem, { userId: key, productId: "p-1", name: "Widget", quantity: 1 }),
  readPayload: (key) => encode(messageTypes.getShoppingCart, { userId: key }),
  applied(reply) {
    const cart = messageTypes.cart.toObject(messageTypes.cart.decode(reply), { defaults: true }) as { items: { quantity: number }[] };
    return cart.items.reduce((sum, item) => sum + item.quantity, 0);
  },
};

export const counterWorkload: Workload = {
  module: "counter",
  service: "keystate.examples.counter.Counter",
  writeMethod: "Increase",
  readMethod: "Get",
  describe: "Counter/Increase (value entity: the new value stored per command)",
  writePayload: (key) => encode(messageTypes.changeValue, { counterId: key, value: 1 }),
  readPayload: (key) => encode(messageTypes.counterId, { counterId: key }),
  applied(reply) {
    const current = messageTypes.currentValue.toObject(messageTypes.currentValue.decode(reply), { longs: Number, defaults: true }) as { value: number };
    return current.value;
  },
};

export function grpcPath(workload: Workload, method: string): string {
  return `/${workload.service}/${method}`;
}
